# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError

from ansible_collections.hzel.cloud.plugins.module_utils._client import (
    USER_AGENT,
    HzelAuthError,
    HzelBadRequest,
    HzelClient,
    HzelError,
    HzelNotFound,
    HzelUnavailable,
)

API = "http://hzel.test"
LIST = API + "/api/v1/containers"
TOKEN = "s3cret-token-value"
RECORD = {
    "id": "01942cf7-0000-7000-8000-000000000001", "user_id": "u1", "hostname": "web-1", "state": "running",
    "cpu_cores": 1, "memory_mb": 512, "disk_gb": 18, "created_at": "2026-03-28T00:00:00Z",
}
ONE = LIST + "/" + RECORD["id"]


def error_body(code, message):
    return {"error": {"code": code, "message": message}}


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(sleeps):
    return HzelClient(API, TOKEN, retries=3, sleep=sleeps.append)


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def refused():
    return requests.exceptions.ConnectionError(MaxRetryError(None, LIST, NewConnectionError(None, "[Errno 111] Connection refused")))


def sent(api, method):
    return [call for call in api.calls if call.request.method == method]


def test_requests_carry_the_bearer_token_and_the_collection_user_agent(api, client):
    api.get(LIST, json={"data": [RECORD]})
    assert client.list_containers() == [RECORD]
    headers = api.calls[0].request.headers
    assert headers["Authorization"] == "Bearer " + TOKEN
    assert headers["User-Agent"] == USER_AGENT and "hzel.cloud/0.1.0" in USER_AGENT


def test_a_missing_token_fails_before_any_request_naming_both_ways_to_give_one(api):
    with pytest.raises(HzelAuthError) as failure:
        HzelClient(API, None)
    assert "api_token" in failure.value.message and "HZEL_API_TOKEN" in failure.value.message
    assert not api.calls


def test_a_refused_token_says_authentication_failed_and_never_echoes_the_token(api, client):
    api.get(LIST, status=401, json=error_body("UNAUTHORIZED", "Missing or invalid auth"))
    with pytest.raises(HzelAuthError) as failure:
        client.list_containers()
    assert "Authentication with the hzel API failed" in failure.value.message
    assert "api_token" in failure.value.message and failure.value.code == "UNAUTHORIZED"
    assert TOKEN not in str(failure.value)


def test_not_found_is_its_own_error(api, client):
    api.get(ONE, status=404, json=error_body("NOT_FOUND", "Container not found or not owned by user"))
    with pytest.raises(HzelNotFound) as failure:
        client.get_container(RECORD["id"])
    assert failure.value.status == 404


def test_a_bad_request_carries_the_api_message(api, client):
    api.post(LIST, status=400, json=error_body("BAD_REQUEST", "disk_gb: must be between 18 and 32"))
    with pytest.raises(HzelBadRequest) as failure:
        client.create_container({"hostname": "web-1", "disk_gb": 40})
    assert "disk_gb: must be between 18 and 32" in failure.value.message


def test_csrf_rejection_explains_that_a_token_is_needed(api, client):
    api.post(ONE + "/stop", status=403, json=error_body("CSRF_REJECTED", "Session auth missing x-csrf-token"))
    with pytest.raises(HzelAuthError) as failure:
        client.stop_container(RECORD["id"])
    assert "CSRF" in failure.value.message and "personal access token" in failure.value.message


def test_an_html_page_from_a_proxy_is_retried_then_reported_with_an_excerpt(api, client, sleeps):
    page = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>nginx</body></html>"
    api.get(LIST, status=502, body=page, content_type="text/html")
    with pytest.raises(HzelUnavailable) as failure:
        client.list_containers()
    message = failure.value.message
    assert "HTTP 502" in message and "not JSON" in message and "502 Bad Gateway" in message
    assert "<html>" not in message and "after 4 attempts" in message
    assert len(api.calls) == 4 and len(sleeps) == 3


def test_an_html_page_with_status_200_is_not_mistaken_for_data(api, client):
    api.get(LIST, status=200, body="<html>login</html>", content_type="text/html")
    with pytest.raises(HzelError) as failure:
        client.list_containers()
    assert "not JSON" in failure.value.message and len(api.calls) == 1


def test_429_waits_as_long_as_retry_after_says(api, client, sleeps):
    api.get(LIST, status=429, json=error_body("RATE_LIMITED", "slow down"), headers={"Retry-After": "2"})
    api.get(LIST, json={"data": []})
    assert client.list_containers() == []
    assert sleeps == [2.0]


def test_backoff_grows_with_jitter_below_the_cap(api, sleeps):
    client = HzelClient(API, TOKEN, retries=5, backoff=1.0, backoff_max=4.0, sleep=sleeps.append)
    api.get(LIST, status=503, json=error_body("SERVICE_UNAVAILABLE", "down"))
    with pytest.raises(HzelUnavailable):
        client.list_containers()
    bounds = [(0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (2.0, 4.0), (2.0, 4.0)]
    assert len(sleeps) == len(bounds)
    assert all(low <= delay <= high for delay, (low, high) in zip(sleeps, bounds))


def test_an_unreachable_api_is_one_clear_error(api, client):
    api.get(LIST, body=refused())
    with pytest.raises(HzelUnavailable) as failure:
        client.list_containers()
    assert "could not be reached" in failure.value.message and "Connection refused" in failure.value.message
    assert API in failure.value.message


def test_a_timeout_is_retried_for_reads(api, client):
    api.get(LIST, body=requests.exceptions.ReadTimeout("read timed out"))
    api.get(LIST, json={"data": [RECORD]})
    assert client.list_containers() == [RECORD]


def test_a_create_whose_reply_was_lost_is_found_by_hostname_not_sent_again(api, client):
    api.post(LIST, body=requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected"))
    api.get(LIST, json={"data": [RECORD]})
    assert client.create_container({"hostname": "web-1"}) == RECORD
    assert len(sent(api, "POST")) == 1


def test_a_create_whose_every_reply_was_lost_still_returns_the_committed_container(api, sleeps):
    client = HzelClient(API, TOKEN, retries=1, sleep=sleeps.append)
    api.post(LIST, body=requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected"))
    api.get(LIST, json={"data": []})
    api.get(LIST, json={"data": [RECORD]})
    assert client.create_container({"hostname": "web-1"}) == RECORD
    assert [call.request.method for call in api.calls] == ["POST", "GET", "POST", "GET"]


def test_an_unreachable_api_is_not_waited_for_after_the_last_attempt(api, sleeps):
    client = HzelClient(API, TOKEN, retries=2, sleep=sleeps.append)
    api.get(LIST, body=refused())
    with pytest.raises(HzelUnavailable):
        client.list_containers()
    assert len(api.calls) == 3 and len(sleeps) == 2


def test_a_create_answered_502_is_sent_again_only_after_the_lookup_finds_nothing(api, client):
    api.post(LIST, status=502, json=error_body("BAD_GATEWAY", "upstream"))
    api.post(LIST, json={"data": RECORD})
    api.get(LIST, json={"data": []})
    assert client.create_container({"hostname": "web-1"}) == RECORD
    assert [call.request.method for call in api.calls] == ["POST", "GET", "POST"]


def test_a_create_answered_500_returns_the_container_if_it_was_committed(api, client):
    api.post(LIST, status=500, json=error_body("INTERNAL_ERROR", "oops"))
    api.get(LIST, json={"data": [RECORD]})
    assert client.create_container({"hostname": "web-1"}) == RECORD
    assert len(sent(api, "POST")) == 1


def test_a_create_refused_with_429_is_sent_again_without_a_lookup(api, client):
    api.post(LIST, status=429, json=error_body("RATE_LIMITED", "slow down"), headers={"Retry-After": "0"})
    api.post(LIST, json={"data": RECORD})
    assert client.create_container({"hostname": "web-1"}) == RECORD
    assert [call.request.method for call in api.calls] == ["POST", "POST"]
    assert json.loads(api.calls[1].request.body) == {"hostname": "web-1"}


def test_start_is_repeated_after_a_503_because_a_repeat_does_no_harm(api, client):
    api.post(ONE + "/start", status=503, json=error_body("SERVICE_UNAVAILABLE", "busy"))
    api.post(ONE + "/start", json={"data": RECORD})
    assert client.start_container(RECORD["id"]) == RECORD


def test_restart_is_not_repeated_when_it_may_have_reached_the_api(api, client):
    api.post(ONE + "/restart", status=503, json=error_body("SERVICE_UNAVAILABLE", "busy"))
    with pytest.raises(HzelUnavailable) as failure:
        client.restart_container(RECORD["id"])
    assert len(api.calls) == 1 and "after 1 attempt" in failure.value.message


def test_restart_is_repeated_when_the_connection_was_refused(api, client):
    api.post(ONE + "/restart", body=refused())
    api.post(ONE + "/restart", json={"data": RECORD})
    assert client.restart_container(RECORD["id"]) == RECORD


def test_a_reply_without_the_data_envelope_is_an_error(api, client):
    api.get(LIST, json={"containers": []})
    with pytest.raises(HzelError) as failure:
        client.list_containers()
    assert "envelope" in failure.value.message


@pytest.mark.parametrize("options, named", [(dict(timeout=0), "api_timeout"), (dict(timeout=-1.5), "api_timeout"),
                                            (dict(retries=-1), "api_retries")])
def test_transport_options_out_of_range_are_refused_before_any_request(api, options, named):
    with pytest.raises(HzelError) as failure:
        HzelClient(API, TOKEN, **options)
    assert named in failure.value.message and not api.calls


def test_an_invalid_api_url_is_refused():
    with pytest.raises(HzelError) as failure:
        HzelClient("api.hzel.org", TOKEN)
    assert "api_url" in failure.value.message


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500, 502])
def test_no_error_message_contains_the_token(api, status):
    client = HzelClient(API, TOKEN, retries=0)
    api.get(LIST, status=status, json=error_body("X", "echo: Bearer " + "*" * 3))
    with pytest.raises(HzelError) as failure:
        client.list_containers()
    assert TOKEN not in repr(failure.value) and TOKEN not in failure.value.message


def test_ids_are_escaped_in_paths(api, client):
    api.get(LIST + "/a%2Fb", status=404, json=error_body("NOT_FOUND", "nope"))
    with pytest.raises(HzelNotFound):
        client.get_container("a/b")
