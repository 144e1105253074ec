# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults switched on at run time, as a flaky network or a proxy would cause them."""

import time

import pytest
import requests


def fault(emulator, **rule):
    emulator.control("PUT", "/faults", json={"faults": [rule]})


def test_429_carries_retry_after_and_stops_after_its_count(emulator):
    fault(emulator, kind="status", status=429, retry_after=3, count=2)
    for _attempt in range(2):
        response = emulator.api("GET", "/containers")
        assert response.status_code == 429 and response.headers["Retry-After"] == "3"
        assert response.json()["error"]["code"] == "RATE_LIMITED"
    assert emulator.api("GET", "/containers").status_code == 200


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_in_the_envelope(emulator, status):
    fault(emulator, kind="status", status=status, count=1)
    response = emulator.api("GET", "/containers")
    assert response.status_code == status and "error" in response.json()


def test_an_html_page_as_a_proxy_sends_it(emulator):
    fault(emulator, kind="html", status=502, count=1)
    response = emulator.api("GET", "/containers")
    assert response.status_code == 502 and response.headers["Content-Type"].startswith("text/html")
    assert "<h1>502 Bad Gateway</h1>" in response.text


def test_a_dropped_connection(emulator):
    fault(emulator, kind="drop", count=1)
    with pytest.raises(requests.exceptions.RequestException):
        emulator.api("GET", "/containers")
    assert emulator.api("GET", "/containers").status_code == 200


def test_a_lost_reply_still_commits_the_create(emulator):
    fault(emulator, kind="lost_reply", method="POST", path="^/api/v1/containers$", count=1)
    with pytest.raises(requests.exceptions.RequestException):
        emulator.api("POST", "/containers", json={"hostname": "ghost"})
    assert [c["hostname"] for c in emulator.api("GET", "/containers").json()["data"]] == ["ghost"]


def test_latency_delays_the_reply(emulator):
    fault(emulator, kind="latency", seconds=0.4, count=1)
    started = time.monotonic()
    assert emulator.api("GET", "/containers").status_code == 200
    assert time.monotonic() - started >= 0.4


def test_rules_match_method_and_path_and_can_be_cleared(emulator):
    fault(emulator, kind="status", status=503, method="POST")
    assert emulator.api("GET", "/containers").status_code == 200
    assert emulator.api("POST", "/containers", json={"hostname": "x"}).status_code == 503
    emulator.control("DELETE", "/faults")
    assert emulator.api("POST", "/containers", json={"hostname": "x"}).status_code == 200


def test_a_bad_rule_is_refused(emulator):
    response = requests.put(emulator.url + "/_emulator/faults", json={"faults": [{"kind": "explode"}]}, timeout=5)
    assert response.status_code == 400


def test_stats_count_api_requests_by_method(emulator):
    emulator.control("DELETE", "/stats")
    emulator.api("GET", "/containers")
    emulator.create("counted")
    stats = emulator.control("GET", "/stats")
    assert stats["total"] == 2 and stats["by_method"] == {"GET": 1, "POST": 1}


def test_settings_change_the_provisioning_delay_without_a_restart(emulator):
    emulator.control("PUT", "/settings", json={"provision_seconds": 0})
    record = emulator.create("instant")
    time.sleep(0.05)
    assert emulator.api("GET", "/containers/" + record["id"]).json()["data"]["state"] == "running"


def test_seeding_adds_many_containers_at_once(emulator):
    assert emulator.control("POST", "/seed", json={"owner": "bob", "count": 500, "prefix": "bulk-"})["added"] == 500
    listed = emulator.api("GET", "/containers", token="bob").json()["data"]
    assert len(listed) == 500 and listed[0]["hostname"].startswith("bulk-")
