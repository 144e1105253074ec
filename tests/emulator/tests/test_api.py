# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulator against the published reference, endpoint by endpoint."""

import re
import threading
import time

import jsonschema
import pytest
import requests

RECORD_TYPES = {
    "id": str,
    "user_id": str,
    "hostname": str,
    "state": str,
    "cpu_cores": int,
    "memory_mb": int,
    "disk_gb": int,
    "created_at": str,
}
METRIC_TYPES = {
    "cpu_percent": float,
    "memory_used_mb": int,
    "memory_total_mb": int,
    "disk_used_gb": float,
    "disk_total_gb": int,
}
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
MISSING = "01942cf7-0000-7000-8000-000000000000"


def assert_types(document, types):
    """Exact JSON types: a bool is no integer, an integer is no float."""
    assert set(document) == set(types)
    for field, kind in types.items():
        assert isinstance(document[field], kind) and not isinstance(document[field], bool), field


def assert_record(record):
    assert_types(record, RECORD_TYPES)
    assert UUID7.match(record["id"]) and UUID7.match(record["user_id"])
    assert ISO_UTC.match(record["created_at"])
    assert record["state"] in ("running", "stopped", "provisioning", "failed")


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    return body["error"]["message"]


def wait_running(emulator, container_id):
    time.sleep(emulator.provision_seconds + 0.05)
    return emulator.api("GET", "/containers/" + container_id).json()["data"]


def test_create_answers_a_provisioning_record_with_defaults(emulator):
    response = emulator.api("POST", "/containers", json={"hostname": "my-box"})
    assert response.status_code == 200 and set(response.json()) == {"data"}
    record = response.json()["data"]
    assert_record(record)
    assert (record["state"], record["cpu_cores"], record["memory_mb"], record["disk_gb"]) == (
        "provisioning",
        1,
        512,
        18,
    )


def test_provisioning_ends_running_after_the_delay(emulator):
    record = emulator.create("my-box", cpu_cores=2, memory_mb=1024, disk_gb=20)
    assert wait_running(emulator, record["id"])["state"] == "running"


def test_hostnames_starting_with_fail_end_failed_and_refuse_power_actions(emulator):
    record = emulator.create("fail-box")
    assert wait_running(emulator, record["id"])["state"] == "failed"
    for action in ("start", "stop", "restart"):
        message = assert_error(emulator.api("POST", "/containers/%s/%s" % (record["id"], action)), 400, "BAD_REQUEST")
        assert "failed" in message


def test_list_shows_a_user_only_their_own_and_an_admin_everything(emulator):
    mine = emulator.create("alice-box")
    emulator.create("bob-box", token="bob")
    alice = emulator.api("GET", "/containers").json()["data"]
    assert [c["hostname"] for c in alice] == ["alice-box"] and alice[0]["id"] == mine["id"]
    admin = emulator.api("GET", "/containers", token="admin").json()["data"]
    assert sorted(c["hostname"] for c in admin) == ["alice-box", "bob-box"]
    for record in admin:
        assert_record(record)


def test_get_one_returns_the_record(emulator):
    record = emulator.create("my-box")
    fetched = emulator.api("GET", "/containers/" + record["id"]).json()["data"]
    assert_record(fetched)
    assert fetched["id"] == record["id"]


@pytest.mark.parametrize(
    "method, suffix",
    [
        ("GET", "/containers"),
        ("POST", "/containers"),
        ("GET", "/containers/X"),
        ("POST", "/containers/X/start"),
        ("POST", "/containers/X/stop"),
        ("POST", "/containers/X/restart"),
        ("GET", "/containers/X/metrics"),
    ],
)
@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_every_endpoint_answers_401_without_valid_auth(emulator, method, suffix, token):
    assert_error(
        emulator.api(method, suffix.replace("X", MISSING), token=token, json={"hostname": "x"}), 401, "UNAUTHORIZED"
    )


def test_a_malformed_authorization_header_is_401(emulator):
    response = emulator.api("GET", "/containers", token=None, headers={"Authorization": "Basic hzel-demo-token"})
    assert_error(response, 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    "method, suffix",
    [
        ("GET", ""),
        ("POST", "/start"),
        ("POST", "/stop"),
        ("POST", "/restart"),
        ("GET", "/metrics"),
    ],
)
def test_unknown_and_foreign_containers_are_404(emulator, method, suffix):
    bobs = emulator.create("bob-box", token="bob")
    assert_error(emulator.api(method, "/containers/" + MISSING + suffix), 404, "NOT_FOUND")
    assert_error(emulator.api(method, "/containers/" + bobs["id"] + suffix), 404, "NOT_FOUND")
    assert emulator.api(method, "/containers/" + bobs["id"] + suffix, token="admin").status_code == 200


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "hostname"),
        ({"hostname": "Bad_Name"}, "hostname"),
        ({"hostname": "-x"}, "hostname"),
        ({"hostname": "a" * 64}, "hostname"),
        ({"hostname": 5}, "hostname"),
        ({"hostname": "ok", "cpu_cores": "2"}, "cpu_cores"),
        ({"hostname": "ok", "cpu_cores": 1.5}, "cpu_cores"),
        ({"hostname": "ok", "cpu_cores": True}, "cpu_cores"),
        ({"hostname": "ok", "cpu_cores": 0}, "cpu_cores"),
        ({"hostname": "ok", "memory_mb": 64}, "memory_mb"),
        ({"hostname": "ok", "disk_gb": 17}, "disk_gb"),
        ({"hostname": "ok", "disk_gb": 33}, "disk_gb"),
        ({"hostname": "ok", "colour": "red"}, "colour"),
    ],
)
def test_invalid_create_bodies_are_400_naming_the_field(emulator, body, field):
    message = assert_error(emulator.api("POST", "/containers", json=body), 400, "BAD_REQUEST")
    assert field in message
    assert emulator.api("GET", "/containers").json()["data"] == []


def test_a_body_that_is_not_json_or_not_declared_json_is_400(emulator):
    response = emulator.api("POST", "/containers", data="{not json", headers={"Content-Type": "application/json"})
    assert "JSON" in assert_error(response, 400, "BAD_REQUEST")
    response = emulator.api("POST", "/containers", data='{"hostname": "ok"}', headers={"Content-Type": "text/plain"})
    assert "Content-Type" in assert_error(response, 400, "BAD_REQUEST")
    response = emulator.api("POST", "/containers", data='{"hostname": "ok"}')
    assert "Content-Type" in assert_error(response, 400, "BAD_REQUEST")
    response = emulator.api("POST", "/containers", json=["hostname"])
    assert_error(response, 400, "BAD_REQUEST")


def test_a_taken_hostname_is_400_even_for_another_user(emulator):
    emulator.create("shared-name")
    message = assert_error(
        emulator.api("POST", "/containers", token="bob", json={"hostname": "shared-name"}), 400, "BAD_REQUEST"
    )
    assert "already in use" in message


def test_stop_start_restart_move_the_state(emulator):
    record = emulator.create("my-box")
    wait_running(emulator, record["id"])
    path = "/containers/%s/" % record["id"]
    stopped = emulator.api("POST", path + "stop").json()["data"]
    assert_record(stopped)
    assert stopped["state"] == "stopped"
    assert emulator.api("POST", path + "stop").json()["data"]["state"] == "stopped"
    assert emulator.api("POST", path + "start").json()["data"]["state"] == "running"
    assert emulator.api("POST", path + "restart").json()["data"]["state"] == "running"


def test_start_on_a_provisioning_container_answers_once_it_is_running(emulator):
    record = emulator.create("my-box")
    started = time.monotonic()
    response = emulator.api("POST", "/containers/%s/start" % record["id"])
    assert response.json()["data"]["state"] == "running"
    assert time.monotonic() - started >= emulator.provision_seconds * 0.5


def test_metrics_agree_with_the_record_and_are_zero_while_stopped(emulator):
    record = emulator.create("my-box", memory_mb=1024, disk_gb=25)
    wait_running(emulator, record["id"])
    metrics = emulator.api("GET", "/containers/%s/metrics" % record["id"]).json()["data"]
    assert_types(metrics, METRIC_TYPES)
    assert metrics["memory_total_mb"] == 1024 and metrics["disk_total_gb"] == 25
    assert 0 < metrics["memory_used_mb"] <= 1024 and 0 <= metrics["cpu_percent"] <= 100
    assert 0 < metrics["disk_used_gb"] <= 25
    emulator.api("POST", "/containers/%s/stop" % record["id"])
    stopped = emulator.api("GET", "/containers/%s/metrics" % record["id"]).json()["data"]
    assert stopped["cpu_percent"] == 0.0 and stopped["memory_used_mb"] == 0


def test_session_auth_needs_the_csrf_token_on_posts_only(emulator):
    cookies = {"hzel_session": "alice-session"}
    assert emulator.api("GET", "/containers", token=None, cookies=cookies).status_code == 200
    message = assert_error(
        emulator.api("POST", "/containers", token=None, cookies=cookies, json={"hostname": "s1"}), 403, "CSRF_REJECTED"
    )
    assert "x-csrf-token" in message
    wrong = emulator.api(
        "POST", "/containers", token=None, cookies=cookies, json={"hostname": "s1"}, headers={"x-csrf-token": "guess"}
    )
    assert_error(wrong, 403, "CSRF_REJECTED")
    ok = emulator.api(
        "POST",
        "/containers",
        token=None,
        cookies=cookies,
        json={"hostname": "s1"},
        headers={"x-csrf-token": "alice-csrf"},
    )
    assert ok.status_code == 200
    record = ok.json()["data"]
    for action in ("start", "stop", "restart"):
        response = emulator.api("POST", "/containers/%s/%s" % (record["id"], action), token=None, cookies=cookies)
        assert_error(response, 403, "CSRF_REJECTED")


def test_bearer_tokens_are_exempt_from_csrf(emulator):
    assert emulator.api("POST", "/containers", json={"hostname": "no-csrf"}).status_code == 200


def test_simultaneous_creates_of_one_hostname_make_exactly_one_container(emulator):
    barrier = threading.Barrier(8)
    statuses = []

    def create():
        barrier.wait()
        statuses.append(emulator.api("POST", "/containers", json={"hostname": "race"}).status_code)

    threads = [threading.Thread(target=create) for attempt in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [400] * 7
    assert [c["hostname"] for c in emulator.api("GET", "/containers").json()["data"]] == ["race"]


def test_state_survives_a_restart(emulator):
    record = emulator.create("keep-me")
    emulator.stop()
    emulator.start()
    listed = emulator.api("GET", "/containers").json()["data"]
    assert [c["id"] for c in listed] == [record["id"]]


def test_unknown_routes_use_the_error_envelope(emulator):
    assert_error(emulator.api("GET", "/nope"), 404, "NOT_FOUND")


def test_the_published_openapi_document_describes_every_reply(emulator):
    document = requests.get(emulator.url + "/openapi.json", timeout=5).json()
    paths = document["paths"]
    schema = paths["/api/v1/containers"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["hostname"]
    assert sorted(paths["/api/v1/containers/{container_id}/start"]["post"]["responses"]) == ["200", "401", "403", "404"]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"

    def validate(path, method, response):
        described = paths[path][method]["responses"][str(response.status_code)]
        jsonschema.validate(response.json(), described["content"]["application/json"]["schema"])

    record = emulator.create("described")
    one = "/api/v1/containers/{container_id}"
    validate("/api/v1/containers", "get", emulator.api("GET", "/containers"))
    validate("/api/v1/containers", "post", emulator.api("POST", "/containers", json={"hostname": "described-2"}))
    validate("/api/v1/containers", "post", emulator.api("POST", "/containers", json={}))
    validate("/api/v1/containers", "get", emulator.api("GET", "/containers", token=None))
    validate(one, "get", emulator.api("GET", "/containers/" + record["id"]))
    validate(one, "get", emulator.api("GET", "/containers/" + MISSING))
    for action in ("start", "stop", "restart"):
        validate(one + "/" + action, "post", emulator.api("POST", "/containers/%s/%s" % (record["id"], action)))
    validate(one + "/metrics", "get", emulator.api("GET", "/containers/%s/metrics" % record["id"]))
    session = emulator.api(
        "POST", "/containers/%s/stop" % record["id"], token=None, cookies={"hzel_session": "alice-session"}
    )
    validate(one + "/stop", "post", session)
    assert session.status_code == 403
