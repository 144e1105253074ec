# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.hzel.cloud.plugins.module_utils._client import HzelNotFound
from ansible_collections.hzel.cloud.plugins.module_utils._container import (
    ContainerFailed,
    ContainerManager,
    InvalidParameters,
    SpecMismatch,
    WaitTimeout,
    attach_metrics,
    select_containers,
)
from ansible_collections.hzel.cloud.tests.unit.plugins.module_utils.fake_api import FakeClient, record


class Clock:
    """Time that only moves when the code under test sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self):
        return self.now


def params(**overrides):
    values = dict(hostname="web-1", id=None, cpu_cores=None, memory_mb=None, disk_gb=None, state="present",
                  wait=True, wait_timeout=300.0)
    values.update(overrides)
    return values


def ensure(client, check_mode=False, clock=None, **overrides):
    clock = clock or Clock()
    return ContainerManager(client, params(**overrides), check_mode=check_mode, sleep=clock.sleep, clock=clock).ensure()


def test_a_missing_container_is_created_with_the_spec_and_defaults_and_waited_for():
    client = FakeClient(provisioning_polls=2)
    result = ensure(client, cpu_cores=2, state="present")
    assert result.changed is True
    assert client.calls[1] == ("create", {"hostname": "web-1", "cpu_cores": 2, "memory_mb": 512, "disk_gb": 18})
    assert result.container["state"] == "running"
    expected_after = {"hostname": "web-1", "state": "running", "cpu_cores": 2, "memory_mb": 512, "disk_gb": 18}
    assert result.diff == {"before": {}, "after": expected_after}


def test_an_unchanged_run_makes_one_lookup_and_no_post():
    client = FakeClient([record()])
    result = ensure(client, cpu_cores=1, memory_mb=512, disk_gb=18, state="running")
    assert result.changed is False
    assert client.calls == [("list",)]


def test_lookup_by_id_uses_get_one():
    client = FakeClient([record()])
    result = ensure(client, hostname=None, id="id-web-1")
    assert result.changed is False and client.calls == [("get", "id-web-1")]


def test_an_unknown_id_fails_clearly_and_creates_nothing():
    client = FakeClient()
    with pytest.raises(HzelNotFound) as failure:
        ensure(client, hostname=None, id="nope")
    assert "nope" in failure.value.message and "not visible" in failure.value.message
    assert client.posts == []


def test_spec_drift_fails_before_any_change_naming_each_field_with_both_values():
    client = FakeClient([record(state="stopped", cpu_cores=1, memory_mb=512)])
    with pytest.raises(SpecMismatch) as failure:
        ensure(client, cpu_cores=2, memory_mb=1024, disk_gb=18, state="running")
    message = failure.value.message
    assert "cpu_cores is 1, the parameters ask for 2" in message
    assert "memory_mb is 512, the parameters ask for 1024" in message
    assert "disk_gb" not in message.split("spec:")[1].split(".")[0]
    assert client.posts == []


def test_fields_not_given_are_not_compared():
    client = FakeClient([record(cpu_cores=4)])
    assert ensure(client, memory_mb=512).changed is False


def test_present_leaves_the_power_state_of_an_existing_container_alone():
    client = FakeClient([record(state="stopped")])
    result = ensure(client, state="present")
    assert result.changed is False and result.container["state"] == "stopped" and client.posts == []


@pytest.mark.parametrize("current, wanted, action", [
    ("stopped", "running", "start"),
    ("running", "stopped", "stop"),
    ("running", "restarted", "restart"),
    ("stopped", "restarted", "restart"),
])
def test_power_states_are_converged_with_one_post(current, wanted, action):
    client = FakeClient([record(state=current)])
    result = ensure(client, state=wanted)
    assert result.changed is True
    assert client.posts == [(action, "id-web-1")]
    assert result.diff["before"]["state"] == current and result.diff["after"]["state"] == result.container["state"]


def test_a_new_container_asked_to_be_stopped_is_stopped_after_provisioning():
    client = FakeClient(provisioning_polls=1)
    result = ensure(client, state="stopped")
    assert [call[0] for call in client.posts] == ["create", "stop"]
    assert result.container["state"] == "stopped"


@pytest.mark.parametrize("wanted, predicted", [("present", "running"), ("running", "running"), ("stopped", "stopped"),
                                               ("restarted", "running")])
def test_check_mode_predicts_a_create_and_sends_no_post(wanted, predicted):
    client = FakeClient()
    result = ensure(client, check_mode=True, state=wanted, disk_gb=20)
    assert result.changed is True and client.posts == []
    assert result.container["state"] == predicted and result.container["id"] is None
    assert result.container["disk_gb"] == 20 and result.container["memory_mb"] == 512


def test_check_mode_predicts_a_power_change_and_sends_no_post():
    client = FakeClient([record(state="running")])
    result = ensure(client, check_mode=True, state="stopped")
    assert result.changed is True and result.container["state"] == "stopped" and client.posts == []
    assert client.containers["id-web-1"]["state"] == "running"


def test_restarted_always_reports_a_change_also_in_check_mode():
    client = FakeClient([record()])
    assert ensure(client, check_mode=True, state="restarted").changed is True
    assert client.posts == []


@pytest.mark.parametrize("overrides, option", [
    (dict(hostname="Web_1"), "hostname"),
    (dict(hostname="-web"), "hostname"),
    (dict(hostname="a" * 64), "hostname"),
    (dict(disk_gb=17), "disk_gb"),
    (dict(disk_gb=33), "disk_gb"),
    (dict(cpu_cores=0), "cpu_cores"),
    (dict(memory_mb=-1), "memory_mb"),
    (dict(wait_timeout=0), "wait_timeout"),
    (dict(hostname=None, id=None), "hostname or id"),
])
def test_bad_parameters_are_refused_before_any_request(overrides, option):
    client = FakeClient()
    with pytest.raises(InvalidParameters) as failure:
        ensure(client, **overrides)
    assert option in failure.value.message
    assert client.calls == []


def test_waiting_polls_soon_then_backs_off_but_never_past_the_short_cap():
    client = FakeClient(provisioning_polls=8)
    clock = Clock()
    ensure(client, clock=clock)
    assert clock.sleeps[0] == pytest.approx(0.1)
    assert clock.sleeps == sorted(clock.sleeps)
    assert max(clock.sleeps) <= 0.4


def test_a_container_still_provisioning_at_wait_timeout_fails_naming_it_and_its_state():
    client = FakeClient(provisioning_polls=10 ** 6)
    clock = Clock()
    with pytest.raises(WaitTimeout) as failure:
        ensure(client, clock=clock, wait_timeout=5)
    assert "web-1" in failure.value.message and "'provisioning'" in failure.value.message
    assert "5s" in failure.value.message
    assert clock.now == pytest.approx(5.0)


def test_a_failed_provisioning_is_a_failure():
    client = FakeClient(provisioning_polls=1, ends="failed")
    with pytest.raises(ContainerFailed) as failure:
        ensure(client, state="running")
    assert "failed" in failure.value.message and all(call[0] != "start" for call in client.posts)


def test_an_existing_failed_container_is_a_failure_even_for_present():
    client = FakeClient([record(state="failed")])
    with pytest.raises(ContainerFailed):
        ensure(client, state="present")


def test_without_wait_a_new_container_is_returned_provisioning():
    client = FakeClient(provisioning_polls=5)
    result = ensure(client, wait=False)
    assert result.container["state"] == "provisioning"
    assert [call[0] for call in client.calls] == ["list", "create"]


def test_an_id_with_another_hostname_is_refused():
    client = FakeClient([record()])
    with pytest.raises(InvalidParameters) as failure:
        ensure(client, id="id-web-1", hostname="web-2")
    assert "cannot rename" in failure.value.message


def test_select_filters_by_hostname_and_state_and_tolerates_an_unknown_id():
    client = FakeClient([record("a", "running"), record("b", "stopped"), record("c", "running")])
    assert [c["hostname"] for c in select_containers(client, states=["running"])] == ["a", "c"]
    assert [c["hostname"] for c in select_containers(client, hostname="b")] == ["b"]
    assert select_containers(client, container_id="missing") == []


def test_metrics_are_attached_to_every_container_in_order():
    client = FakeClient([record("h%02d" % i) for i in range(20)])
    containers = client.list_containers()
    enriched = attach_metrics(client, containers, workers=4)
    assert [c["hostname"] for c in enriched] == [c["hostname"] for c in containers]
    assert all(c["metrics"]["memory_total_mb"] == c["memory_mb"] for c in enriched)
    assert len([call for call in client.calls if call[0] == "metrics"]) == 20
