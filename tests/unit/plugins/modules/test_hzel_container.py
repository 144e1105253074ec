# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The modules as Ansible runs them: arguments in, one JSON result out."""

from __future__ import annotations

import json

import pytest
import responses

from ansible_collections.hzel.cloud.plugins.module_utils import _module
from ansible_collections.hzel.cloud.plugins.modules import hzel_container, hzel_container_info, hzel_containers
from ansible_collections.hzel.cloud.tests.unit.plugins.module_utils.fake_api import API, ID, LIST, RECORD
from ansible_collections.hzel.cloud.tests.unit.plugins.modules.runner import (
    TOKEN,
    as_play_sees_it,
    patch_module_args,
    run_module,
    run_module_raw,
)


@responses.activate
def test_an_unchanged_run_exits_unchanged_after_one_request(capsys):
    responses.get(LIST, json={"data": [RECORD]})
    result = run_module(hzel_container, {"hostname": "web-1", "state": "running"}, capsys)
    assert result["changed"] is False and result["container"] == RECORD
    assert len(responses.calls) == 1


@responses.activate
def test_diff_mode_returns_before_and_after(capsys):
    responses.get(LIST, json={"data": [RECORD]})
    responses.post(LIST + "/" + ID + "/stop", json={"data": dict(RECORD, state="stopped")})
    result = run_module(hzel_container, {"hostname": "web-1", "state": "stopped", "_ansible_diff": True}, capsys)
    assert result["changed"] is True
    assert result["diff"]["before"]["state"] == "running" and result["diff"]["after"]["state"] == "stopped"


@responses.activate
def test_a_failure_is_one_message_with_the_api_code_and_no_traceback_nor_token(capsys):
    responses.get(LIST, status=401, json={"error": {"code": "UNAUTHORIZED", "message": "Missing or invalid auth"}})
    result = run_module(hzel_container, {"hostname": "web-1"}, capsys)
    assert result["failed"] is True and result["error_code"] == "UNAUTHORIZED" and result["status"] == 401
    assert "Authentication with the hzel API failed" in result["msg"]
    assert "Traceback" not in json.dumps(result) and TOKEN not in json.dumps(result)


def test_a_missing_token_fails_without_a_request(capsys, monkeypatch):
    monkeypatch.delenv("HZEL_API_TOKEN", raising=False)
    with patch_module_args({"api_url": API, "hostname": "web-1"}):
        with pytest.raises(SystemExit):
            hzel_container.main()
    result = as_play_sees_it(capsys.readouterr().out)
    assert result["failed"] is True and "HZEL_API_TOKEN" in result["msg"]


def test_the_token_may_come_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("HZEL_API_TOKEN", "env-token")
    monkeypatch.setenv("HZEL_API_URL", API)
    with responses.RequestsMock() as mock:
        mock.get(LIST, json={"data": []})
        with patch_module_args({}):
            with pytest.raises(SystemExit):
                hzel_container_info.main()
        assert mock.calls[0].request.headers["Authorization"] == "Bearer env-token"
    assert as_play_sees_it(capsys.readouterr().out)["containers"] == []


def test_without_requests_the_module_says_which_library_is_missing(capsys, monkeypatch):
    monkeypatch.setattr(_module, "HAS_REQUESTS", False)
    result = run_module(hzel_container, {"hostname": "web-1"}, capsys)
    assert result["failed"] is True and "requests" in result["msg"]
    assert "Failed to import the required Python library" in result["msg"]


def test_hostname_or_id_is_required(capsys):
    result = run_module(hzel_container, {}, capsys)
    assert result["failed"] is True and "hostname" in result["msg"] and "id" in result["msg"]


@responses.activate
def test_info_sorts_by_hostname_and_adds_metrics(capsys):
    other = dict(RECORD, id="01942cf7-0000-7000-8000-000000000000", hostname="app-0")
    responses.get(LIST, json={"data": [RECORD, other]})
    for item in (RECORD, other):
        responses.get(
            LIST + "/%s/metrics" % item["id"],
            json={
                "data": {
                    "cpu_percent": 1.5,
                    "memory_used_mb": 1,
                    "memory_total_mb": 512,
                    "disk_used_gb": 1.0,
                    "disk_total_gb": 18,
                }
            },
        )
    result = run_module(hzel_container_info, {"include_metrics": True}, capsys)
    assert [c["hostname"] for c in result["containers"]] == ["app-0", "web-1"]
    assert result["containers"][0]["metrics"]["cpu_percent"] == 1.5 and result["changed"] is False


@responses.activate
def test_the_fleet_module_returns_records_in_input_order_and_actions_by_hostname(capsys):
    stopped = dict(RECORD, id="01942cf7-0000-7000-8000-000000000002", hostname="web-2", state="stopped")
    responses.get(LIST, json={"data": [RECORD, stopped]})
    responses.post(LIST + "/%s/start" % stopped["id"], json={"data": dict(stopped, state="running")})
    result = run_module(
        hzel_containers,
        {"containers": [{"hostname": "web-2"}, {"hostname": "web-1"}], "state": "running", "_ansible_diff": True},
        capsys,
    )
    assert result["changed"] is True and result["actions"] == {"web-2": "start", "web-1": "none"}
    assert [c["state"] for c in result["containers"]] == ["running", "running"]
    assert result["diff"] == [
        {
            "before_header": "web-2",
            "after_header": "web-2",
            "before": {"hostname": "web-2", "state": "stopped", "cpu_cores": 1, "memory_mb": 512, "disk_gb": 18},
            "after": {"hostname": "web-2", "state": "running", "cpu_cores": 1, "memory_mb": 512, "disk_gb": 18},
        }
    ]


@responses.activate
def test_a_refused_plan_returns_every_problem_and_sends_no_post(capsys):
    responses.get(LIST, json={"data": [dict(RECORD, cpu_cores=2)]})
    result = run_module(
        hzel_containers, {"containers": [{"hostname": "web-1", "cpu_cores": 4}, {"hostname": "new-1"}]}, capsys
    )
    assert result["failed"] is True and "cpu_cores is 2, the parameters ask for 4" in result["msg"]
    assert list(result["problems"]) == ["containers[0]"]
    assert [call.request.method for call in responses.calls] == ["GET"]


def test_a_misspelt_item_key_is_refused_by_the_argument_spec(capsys):
    result = run_module(hzel_containers, {"containers": [{"hostname": "web-1", "cpu_core": 2}]}, capsys)
    assert result["failed"] is True and "cpu_core" in result["msg"]


@responses.activate
def test_a_partial_failure_carries_what_was_done(capsys):
    responses.get(LIST, json={"data": []})
    responses.post(LIST, json={"data": dict(RECORD, state="running")})
    responses.post(LIST, status=400, json={"error": {"code": "BAD_REQUEST", "message": "memory_mb: too large"}})
    result = run_module(
        hzel_containers, {"containers": [{"hostname": "web-1"}, {"hostname": "web-9"}], "parallelism": 1}, capsys
    )
    assert result["failed"] is True and "1 of 2 containers did not converge" in result["msg"]
    assert result["actions"] == {"web-1": "create", "web-9": "none"}
    assert result["containers"][0]["hostname"] == "web-1" and result["containers"][1] is None
    assert "memory_mb: too large" in result["failures"]["web-9"]


@pytest.mark.parametrize("token", ["module-secret-token\n", "module-secret\ttoken"])
def test_a_token_with_control_characters_is_never_echoed(capsys, token):
    result = run_module(hzel_container, {"hostname": "web-1", "api_token": token}, capsys)
    assert result["failed"] is True and "module-secret" not in json.dumps(result)


@responses.activate
def test_an_echoed_token_in_any_form_is_scrubbed_from_the_result(capsys):
    responses.get(LIST, status=400, json={"error": {"code": "BAD", "message": "saw %r and %s" % (TOKEN, TOKEN)}})
    result = run_module(hzel_container, {"hostname": "web-1"}, capsys)
    assert TOKEN not in json.dumps(result) and TOKEN[:8] not in json.dumps(result)


@pytest.mark.parametrize(
    "args, says",
    [
        ({"hostname": "web-1", "api_timeout": float("nan")}, "api_timeout must be a finite number"),
        ({"hostname": "web-1", "wait_timeout": float("nan")}, "wait_timeout must be a finite number"),
        ({"hostname": "web-1", "wait_timeout": 1e308}, "wait_timeout must be greater than 0 and at most 86400"),
        ({"id": "."}, "id must be a container UUID"),
        ({"hostname": "web-1\n"}, "hostname must be a DNS label"),
    ],
)
def test_absurd_parameters_are_refused_before_any_request(capsys, args, says):
    with responses.RequestsMock() as mock:
        result = run_module(hzel_container, args, capsys)
        assert not mock.calls
    assert result["failed"] is True and says in result["msg"]


def test_the_info_module_refuses_an_id_that_would_be_another_path(capsys):
    with responses.RequestsMock() as mock:
        result = run_module(hzel_container_info, {"id": "../containers"}, capsys)
        assert not mock.calls
    assert result["failed"] is True and "UUID" in result["msg"]


@responses.activate
def test_a_refused_create_fails_with_the_api_code_and_status(capsys):
    responses.get(LIST, json={"data": []})
    responses.post(LIST, status=400, json={"error": {"code": "BAD_REQUEST", "message": "memory_mb: too large"}})
    result = run_module(hzel_container, {"hostname": "web-9", "memory_mb": 99999}, capsys)
    assert result["failed"] is True and "memory_mb: too large" in result["msg"]
    assert result["error_code"] == "BAD_REQUEST" and result["status"] == 400
    assert result["container"] is None


@responses.activate
def test_a_fleet_returns_the_api_code_and_status_of_each_failed_item(capsys):
    responses.get(LIST, json={"data": []})
    responses.post(LIST, json={"data": dict(RECORD, state="running")})
    responses.post(LIST, status=400, json={"error": {"code": "BAD_REQUEST", "message": "memory_mb: too large"}})
    result = run_module(
        hzel_containers, {"containers": [{"hostname": "web-1"}, {"hostname": "web-9"}], "parallelism": 1}, capsys
    )
    assert result["failed"] is True and result["failures"].keys() == {"web-9"}
    assert result["failure_details"] == {"web-9": {"error_code": "BAD_REQUEST", "status": 400}}
    assert result["error_code"] == "BAD_REQUEST" and result["status"] == 400


@responses.activate
def test_a_fleet_of_two_containers_of_one_hostname_reports_each_by_id(capsys):
    twins = [
        dict(RECORD, hostname="twin", state="stopped", id="01942cf7-0000-7000-8000-00000000007%d" % n) for n in (1, 2)
    ]
    responses.get(LIST, json={"data": twins})
    for twin in twins:
        responses.post(LIST + "/%s/start" % twin["id"], json={"data": dict(twin, state="running")})
    result = run_module(
        hzel_containers, {"containers": [{"id": twin["id"]} for twin in twins], "state": "running"}, capsys
    )
    assert result["changed"] is True
    assert result["actions"] == {"twin (%s)" % twin["id"]: "start" for twin in twins}


def test_an_unexpected_exception_is_one_message_with_its_class_and_no_token(capsys, monkeypatch):
    class Exploding:
        def list(self):
            raise RecursionError("maximum recursion depth exceeded near %s" % TOKEN)

    monkeypatch.setattr(_module, "build_client", lambda params, pool_size: Exploding())
    result = run_module(hzel_container_info, {}, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("Unexpected error (RecursionError): maximum recursion depth exceeded near ")
    assert TOKEN not in json.dumps(result) and "Traceback" not in json.dumps(result)


@responses.activate
def test_the_token_is_only_in_the_private_keys_that_the_controller_pops_and_masks(capsys):
    # The API echoes the token; the module's raw output may carry it only where a core sends no_log
    # values to the controller for masking (2.22: _ansible_new_secrets), never in what a play sees.
    responses.get(LIST, status=400, json={"error": {"code": "BAD", "message": "token %s refused" % TOKEN}})
    raw = run_module_raw(hzel_container, {"hostname": "web-1"}, capsys)
    result = as_play_sees_it(raw)
    assert result["failed"] is True and "********" in result["msg"]
    assert TOKEN not in json.dumps(result)
    private = {key: value for key, value in json.loads(raw).items() if key.startswith("_ansible_")}
    if TOKEN in raw:
        assert TOKEN in private.get("_ansible_new_secrets", []), "the token is in the raw output, unmasked"
