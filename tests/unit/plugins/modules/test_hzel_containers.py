# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hzel_containers with count and hostname_pattern, as Ansible runs it, over mocked HTTP."""

from __future__ import annotations

import json

import pytest
import requests
import responses
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hzel.cloud.plugins.modules import hzel_containers
from ansible_collections.hzel.cloud.tests.unit.plugins.module_utils.fake_api import LIST, RECORD
from ansible_collections.hzel.cloud.tests.unit.plugins.modules.runner import TOKEN, run_module


def member(hostname, state="running", number=1, **spec):
    return dict(RECORD, id="01942cf7-0000-7000-8000-%012d" % number, hostname=hostname, state=state, **spec)


def posts():
    return [(call.request.method, call.request.url.rsplit("/", 1)[-1]) for call in responses.calls][1:]


@responses.activate
def test_an_unchanged_group_costs_one_request_and_reports_its_members(capsys):
    responses.get(LIST, json={"data": [member("web-2", number=2), member("web-1"), member("web-01", number=3)]})
    result = run_module(hzel_containers, {"hostname_pattern": "web-{index}", "count": 2}, capsys)
    assert result["changed"] is False and len(responses.calls) == 1
    assert result["actions"] == {"web-1": "none", "web-2": "none"}
    assert [record["hostname"] for record in result["containers"]] == ["web-1", "web-2"]
    group = result["group"]
    assert group["hostname_pattern"] == "web-{index}" and group["count"] == 2
    assert [record["hostname"] for record in group["members"]] == ["web-1", "web-2"]
    assert group["active"] == ["web-1", "web-2"] and group["stopped"] == [] and group["failed"] == []


@responses.activate
def test_scaling_down_stops_the_highest_index_with_a_diff_per_stopped_member(capsys):
    web = [member("web-%d" % index, number=index) for index in (1, 2, 3)]
    responses.get(LIST, json={"data": web})
    for record in web[1:]:
        responses.post(LIST + "/%s/stop" % record["id"], json={"data": dict(record, state="stopped")})
    result = run_module(hzel_containers, {"hostname_pattern": "web-{index}", "count": 1, "_ansible_diff": True}, capsys)
    assert result["changed"] is True
    assert result["actions"] == {"web-1": "none", "web-2": "stop", "web-3": "stop"}
    assert posts() == [("POST", "stop"), ("POST", "stop")]
    assert result["group"]["active"] == ["web-1"] and result["group"]["stopped"] == ["web-2", "web-3"]
    assert [diff["before_header"] for diff in result["diff"]] == ["web-2", "web-3"]
    assert result["diff"][0]["after"]["state"] == "stopped"


def test_check_mode_predicts_the_group_and_sends_no_post(capsys):
    with responses.RequestsMock() as mock:
        mock.get(LIST, json={"data": [member("web-1", "stopped")]})
        result = run_module(
            hzel_containers,
            {"hostname_pattern": "web-{index:02d}", "count": 2, "cpu_cores": 1, "_ansible_check_mode": True},
            capsys,
        )
        assert [call.request.method for call in mock.calls] == ["GET"]
    # web-1 is not web-{index:02d}'s: two new members, web-01 and web-02.
    assert result["changed"] is True and result["actions"] == {"web-01": "create", "web-02": "create"}
    assert result["group"]["active"] == ["web-01", "web-02"]


@responses.activate
def test_a_member_found_failed_is_warned_about_and_its_name_is_not_reused(capsys, monkeypatch):
    # How a warning reaches the result differs between ansible-core versions; what the module says does not.
    warned = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, warning, *args, **kwargs: warned.append(warning))
    responses.get(LIST, json={"data": [member("web-1", "failed"), member("web-2", number=2)]})
    responses.post(LIST, json={"data": member("web-3", "running", number=3)})
    result = run_module(hzel_containers, {"hostname_pattern": "web-{index}", "count": 2, "wait": False}, capsys)
    assert result["actions"] == {"web-2": "none", "web-3": "create"}
    assert json.loads(responses.calls[1].request.body) == {"hostname": "web-3"}
    assert result["group"]["failed"] == ["web-1"] and result["group"]["active"] == ["web-2", "web-3"]
    assert warned == [
        "hostname_pattern web-{index}: members in state 'failed' are not counted and their hostnames stay taken "
        "(the hzel API cannot repair or delete a container): web-1"
    ]


@responses.activate
def test_drift_refuses_the_group_naming_each_member_and_sends_no_post(capsys):
    responses.get(LIST, json={"data": [member("web-1", cpu_cores=1), member("web-2", "stopped", 2, cpu_cores=1)]})
    result = run_module(hzel_containers, {"hostname_pattern": "web-{index}", "count": 2, "cpu_cores": 2}, capsys)
    assert result["failed"] is True and len(responses.calls) == 1
    assert sorted(result["problems"]) == ["web-1", "web-2"]
    assert "cpu_cores is 1, the parameters ask for 2" in result["msg"]
    # The refusal still shows the group as it was read.
    assert result["group"]["active"] == ["web-1"] and result["group"]["stopped"] == ["web-2"]


@responses.activate
def test_a_create_that_fails_fails_the_task_with_the_group_as_it_ended(capsys):
    responses.get(LIST, json={"data": [member("web-1")]})
    responses.post(LIST, status=400, json={"error": {"code": "BAD_REQUEST", "message": "hostname already in use"}})
    result = run_module(hzel_containers, {"hostname_pattern": "web-{index}", "count": 2}, capsys)
    assert result["failed"] is True and "already in use" in result["failures"]["web-2"]
    assert result["actions"] == {"web-1": "none", "web-2": "none"}
    assert result["group"]["active"] == ["web-1"] and len(result["group"]["members"]) == 1


@pytest.mark.parametrize(
    "args, says",
    [
        ({"containers": [{"hostname": "web-1"}], "count": 1, "hostname_pattern": "web-{index}"}, "mutually exclusive"),
        ({"containers": [{"hostname": "web-1"}], "cpu_cores": 2}, "mutually exclusive: containers|cpu_cores"),
        ({"containers": [{"hostname": "web-1"}], "index_start": 3}, "mutually exclusive: containers|index_start"),
        ({"count": 1}, "parameters are required together: count, hostname_pattern"),
        ({"hostname_pattern": "web-{index}"}, "parameters are required together: count, hostname_pattern"),
        ({}, "one of the following is required: containers, count"),
        ({"count": 1, "hostname_pattern": "web-{index}", "state": "running"}, "state does not apply with count"),
        ({"count": 1, "hostname_pattern": "web-{index}-{index}"}, "exactly one placeholder"),
        ({"count": 1, "hostname_pattern": "{index}-web"}, "must start with a literal prefix"),
        ({"count": -1, "hostname_pattern": "web-{index}"}, "count must be at least 0"),
        ({"count": 1001, "hostname_pattern": "web-{index}"}, "count must be at least 0 and at most 1000"),
        ({"count": 1, "hostname_pattern": "web-{index}", "memory_mb": 0}, "memory_mb must be a positive integer"),
        ({"count": 1, "hostname_pattern": "web-{index}", "index_start": -2}, "index_start must be at least 0"),
    ],
)
def test_group_parameters_are_refused_before_any_request(capsys, args, says):
    with responses.RequestsMock() as mock:
        result = run_module(hzel_containers, args, capsys)
        assert not mock.calls
    assert result["failed"] is True and says in result["msg"]
    assert TOKEN not in json.dumps(result)


@responses.activate
def test_a_list_of_containers_still_needs_no_count_and_takes_the_default_index_start(capsys):
    responses.get(LIST, json={"data": [RECORD]})
    result = run_module(hzel_containers, {"containers": [{"hostname": "web-1"}]}, capsys)
    assert result["changed"] is False and "group" not in result


@responses.activate
def test_a_member_being_stopped_that_ends_failed_is_reported_and_does_not_fail_the_task(capsys, monkeypatch):
    warned = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, warning, *args, **kwargs: warned.append(warning))
    web = [member("web-1"), member("web-2", number=2), member("web-3", "provisioning", number=3)]
    responses.get(LIST, json={"data": web})
    responses.post(
        LIST + "/%s/stop" % web[2]["id"],
        status=400,
        json={"error": {"code": "BAD_REQUEST", "message": "Container failed to provision and cannot change state"}},
    )
    responses.get(LIST + "/%s" % web[2]["id"], json={"data": dict(web[2], state="failed")})
    result = run_module(hzel_containers, {"hostname_pattern": "web-{index}", "count": 2, "wait": False}, capsys)
    assert result.get("failed") is not True and "failures" not in result
    assert list(result["left_failed"]) == ["web-3"] and "cannot change state" in result["left_failed"]["web-3"]
    assert result["group"]["active"] == ["web-1", "web-2"] and result["group"]["failed"] == ["web-3"]
    assert len(warned) == 1 and "web-3" in warned[0] and "no longer counted" in warned[0]


@responses.activate
def test_without_a_spec_a_new_member_is_created_with_the_spec_the_members_share(capsys):
    spec = {"cpu_cores": 2, "memory_mb": 1024, "disk_gb": 20}
    responses.get(LIST, json={"data": [member("web-1", **spec), member("web-2", "stopped", 2, **spec)]})
    responses.post(
        LIST + "/%s/start" % member("web-2", number=2)["id"], json={"data": member("web-2", number=2, **spec)}
    )
    responses.post(LIST, json={"data": member("web-3", number=3, **spec)})
    result = run_module(hzel_containers, {"hostname_pattern": "web-{index}", "count": 3, "wait": False}, capsys)
    assert result["actions"] == {"web-1": "none", "web-2": "start", "web-3": "create"}
    create = [call for call in responses.calls if call.request.url == LIST and call.request.method == "POST"]
    assert json.loads(create[0].request.body) == dict(spec, hostname="web-3")


@responses.activate
def test_without_a_spec_members_that_differ_refuse_the_count_before_any_post(capsys):
    responses.get(LIST, json={"data": [member("web-1", cpu_cores=1), member("web-2", number=2, cpu_cores=2)]})
    result = run_module(hzel_containers, {"hostname_pattern": "web-{index}", "count": 3}, capsys)
    assert result["failed"] is True and len(responses.calls) == 1
    assert "give cpu_cores for the new members" in result["msg"] and list(result["problems"]) == ["cpu_cores"]
    assert result["group"]["active"] == ["web-1", "web-2"]


@responses.activate
def test_an_api_that_refuses_connections_is_warned_about_once_at_the_first_retry(capsys, monkeypatch):
    warned = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, warning, *args, **kwargs: warned.append(warning))
    responses.get(LIST, body=requests.exceptions.ConnectionError("[Errno 111] Connection refused"))
    result = run_module(hzel_containers, {"containers": [{"hostname": "web-1"}], "api_retries": 1}, capsys)
    assert result["failed"] is True and "could not be reached" in result["msg"] and "\n" not in result["msg"]
    assert len(responses.calls) == 2
    assert len(warned) == 1 and warned[0].startswith("The hzel API at http://hzel.test could not be reached (GET ")
    assert "retrying with backoff, up to 1 time per request (api_retries)" in warned[0]
    assert TOKEN not in json.dumps(result) + warned[0]
