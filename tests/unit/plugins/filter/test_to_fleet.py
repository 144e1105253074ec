# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hzel.cloud.plugins.filter.to_fleet import FilterModule, to_fleet
from ansible_collections.hzel.cloud.plugins.module_utils._plan import desired_fleet


def record(hostname, state="running", ident="01942cf7-5b1e-7c3a-9d2e-8f1a2b3c4d5e", **spec):
    base = {"id": ident, "user_id": "u", "hostname": hostname, "state": state, "cpu_cores": 1, "memory_mb": 512}
    base["disk_gb"] = 18
    base.update(spec)
    return base


def test_an_info_result_becomes_sorted_items_with_spec_and_state():
    result = {"changed": False, "containers": [record("web-2", "stopped"), record("db-1", cpu_cores=4)]}
    assert to_fleet(result) == [
        {"hostname": "db-1", "cpu_cores": 4, "memory_mb": 512, "disk_gb": 18, "state": "running"},
        {"hostname": "web-2", "cpu_cores": 1, "memory_mb": 512, "disk_gb": 18, "state": "stopped"},
    ]


def test_a_provisioning_container_is_written_as_running():
    assert to_fleet([record("new-1", "provisioning")])[0]["state"] == "running"


def test_failed_containers_are_left_out_unless_asked_for():
    records = [record("ok-1"), record("bad-1", "failed")]
    assert [item["hostname"] for item in to_fleet(records)] == ["ok-1"]
    kept = to_fleet(records, include_failed=True)
    assert [(item["hostname"], item["state"]) for item in kept] == [("bad-1", "present"), ("ok-1", "running")]


def test_a_hostname_two_containers_hold_is_addressed_by_id():
    first = record("twin", ident="01942cf7-5b1e-7c3a-9d2e-000000000001")
    second = record("twin", "stopped", ident="01942cf7-5b1e-7c3a-9d2e-000000000002")
    items = to_fleet([second, first])
    assert [item.get("id") for item in items] == [first["id"], second["id"]]
    assert all("hostname" not in item for item in items)


def test_the_items_are_accepted_by_the_fleet_module_as_they_are():
    items = to_fleet([record("web-1"), record("web-2", "stopped", disk_gb=32)])
    desired = desired_fleet(items)
    assert [(item.hostname, item.state, item.spec["disk_gb"]) for item in desired] == [
        ("web-1", "running", 18),
        ("web-2", "stopped", 32),
    ]


@pytest.mark.parametrize("value", ["web-1", {"changed": False}, [{"id": "x"}], [None]])
def test_something_that_is_not_a_list_of_records_is_one_clear_error(value):
    with pytest.raises(AnsibleFilterError, match="hzel.cloud.to_fleet"):
        to_fleet(value)


def test_the_filter_is_registered_by_its_name():
    assert FilterModule().filters()["to_fleet"] is to_fleet


TEMPLATE = "{{ lookup('pipe', 'touch /tmp/pwned') }}"


@pytest.mark.parametrize(
    "hostname",
    [TEMPLATE, "{% if true %}x{% endif %}", "web 1", "Web-1", "web-1\n", "-web", "a" * 64, "web.example.net", ""],
)
def test_a_hostname_that_is_not_a_dns_label_is_refused_never_written(hostname):
    with pytest.raises(AnsibleFilterError, match=r"containers\[1\]\.hostname .* not a DNS label") as failure:
        to_fleet([record("web-1"), record(hostname)])
    assert "{{" not in str(failure.value) and "{%" not in str(failure.value)


def test_the_id_of_a_shared_hostname_must_be_a_uuid():
    first = record("twin", ident=TEMPLATE)
    second = record("twin", ident="01942cf7-5b1e-7c3a-9d2e-000000000002")
    with pytest.raises(AnsibleFilterError, match=r"containers\[0\]\.id .* not a container UUID"):
        to_fleet([first, second])


@pytest.mark.parametrize("value", [TEMPLATE, "2", 2.5, True, None])
def test_a_spec_field_that_is_not_a_whole_number_is_refused(value):
    with pytest.raises(AnsibleFilterError, match=r"containers\[0\]\.memory_mb .* not a whole number"):
        to_fleet([record("web-1", memory_mb=value)])


def test_a_state_from_the_api_is_never_written_as_it_is():
    assert to_fleet([record("web-1", TEMPLATE)], include_failed=True)[0]["state"] == "present"


def test_a_failed_container_left_out_is_not_checked():
    assert to_fleet([record("web-1"), record(TEMPLATE, "failed")]) == to_fleet([record("web-1")])


def test_every_written_value_is_a_plain_checked_value():
    """What to_nice_yaml writes from the items is read back by -e @fleet.yml as trusted variables."""
    items = to_fleet([record("web-1"), record("twin"), record("twin", ident="01942cf7-5b1e-7c3a-9d2e-000000000009")])
    for item in items:
        for key, value in item.items():
            assert type(value) in (str, int), (key, value)
            if isinstance(value, str):
                assert re.fullmatch(r"[a-z0-9-]+", value), (key, value)
