# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulator's hostile modes: rate limits, malformed and echoed replies, trickled bodies, late commits,
and the hostname rules that concurrent runs lean on."""

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests


def fault(emulator, **rule):
    emulator.control("PUT", "/faults", json={"faults": [rule]})


def test_a_hostname_with_a_trailing_newline_is_refused(emulator):
    response = emulator.api("POST", "/containers", json={"hostname": "web\n"})
    assert response.status_code == 400 and "DNS label" in response.json()["error"]["message"]


def test_simultaneous_creates_of_one_hostname_make_one_container(emulator):
    def create(token):
        return emulator.api("POST", "/containers", token=token, json={"hostname": "race-1"}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(create, ["alice", "bob"] * 8))
    assert statuses.count(200) == 1 and statuses.count(400) == 15
    assert [c["hostname"] for c in emulator.api("GET", "/containers", token="admin").json()["data"]] == ["race-1"]


def test_owner_scope_lets_two_users_hold_one_hostname_and_an_admin_sees_both(emulator):
    emulator.control("PUT", "/settings", json={"hostname_scope": "owner"})
    emulator.create("shared", token="alice")
    emulator.create("shared", token="bob")
    assert emulator.api("POST", "/containers", token="bob", json={"hostname": "shared"}).status_code == 400
    everything = emulator.api("GET", "/containers", token="admin").json()["data"]
    assert [c["hostname"] for c in everything] == ["shared", "shared"]


def test_rate_limit_answers_429_beyond_the_per_second_budget(emulator):
    emulator.control("PUT", "/rate_limit", json={"per_second": 3, "retry_after": 2})
    statuses = [emulator.api("GET", "/containers").status_code for attempt in range(6)]
    assert statuses[:3] == [200, 200, 200] and set(statuses[3:]) == {429}
    limited = emulator.api("GET", "/containers")
    assert limited.headers["Retry-After"] == "2" and limited.json()["error"]["code"] == "RATE_LIMITED"
    assert emulator.control("GET", "/rate_limit")["limited"] >= 4


def test_rate_limit_answers_429_beyond_the_concurrent_budget(emulator):
    emulator.control("PUT", "/rate_limit", json={"max_concurrent": 1})
    fault(emulator, kind="latency", seconds=1.0, count=1)
    slow = threading.Thread(target=lambda: emulator.api("GET", "/containers"))
    slow.start()
    time.sleep(0.3)
    assert emulator.api("GET", "/containers").status_code == 429
    slow.join()
    assert emulator.api("GET", "/containers").status_code == 200


def test_a_rule_with_a_probability_applies_to_some_requests_only(emulator):
    fault(emulator, kind="status", status=429, probability=0.5)
    statuses = [emulator.api("GET", "/containers").status_code for attempt in range(60)]
    assert 5 < statuses.count(429) < 55 and statuses.count(200) == 60 - statuses.count(429)


def test_a_reply_rule_sends_any_body(emulator):
    fault(emulator, kind="reply", body=json.dumps({"data": ["a", "b"]}), count=1)
    assert emulator.api("GET", "/containers").json() == {"data": ["a", "b"]}


@pytest.mark.parametrize("content_type", ["application/json", "text/html"])
def test_echo_headers_repeats_the_authorization_header(emulator, content_type):
    fault(emulator, kind="echo_headers", content_type=content_type, count=1)
    response = emulator.api("GET", "/containers")
    assert response.status_code == 500 and "Bearer hzel-demo-token" in response.text


def test_trickle_sends_the_real_reply_a_byte_at_a_time(emulator):
    fault(emulator, kind="trickle", seconds=0.05, count=1)
    host, port = emulator.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"GET /api/v1/containers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer hzel-demo-token\r\n"
            b"Connection: close\r\n\r\n"
        )
        pieces = []
        while True:
            piece = connection.recv(65536)
            if not piece:
                break
            pieces.append(piece)
    reply = b"".join(pieces)
    assert reply.endswith(b'{"data":[]}')
    # The body did not arrive in one piece but in many (one per byte, give or take the network).
    assert len(pieces) >= 6


def test_late_commit_cuts_the_connection_then_creates(emulator):
    fault(emulator, kind="late_commit", seconds=0.5, method="POST", count=1)
    with pytest.raises(requests.exceptions.RequestException):
        emulator.api("POST", "/containers", json={"hostname": "late-1"})
    assert emulator.api("GET", "/containers").json()["data"] == []
    time.sleep(1.0)
    assert [c["hostname"] for c in emulator.api("GET", "/containers").json()["data"]] == ["late-1"]


def test_an_abandoned_trickled_request_does_not_keep_a_stopped_emulator_alive(emulator):
    fault(emulator, kind="trickle", seconds=0.5)
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(
            emulator.url + "/api/v1/containers", headers={"Authorization": "Bearer hzel-demo-token"}, timeout=0.5
        )
    emulator.process.terminate()
    # Without the disconnect check the server would go on trickling the body for many seconds.
    assert emulator.process.wait(timeout=5) is not None
