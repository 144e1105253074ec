# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scripted load: POST /_emulator/metrics sets the metrics of the containers whose hostname matches a pattern."""

import time

import pytest
import requests


def _running(emulator, hostname, **spec):
    record = emulator.create(hostname, **spec)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = emulator.api("GET", "/containers/" + record["id"]).json()["data"]
        if record["state"] == "running":
            return record
        time.sleep(0.05)
    raise AssertionError("%s never ran" % hostname)


def _metrics(emulator, record, token="alice"):
    response = emulator.api("GET", "/containers/%s/metrics" % record["id"], token=token)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_a_pattern_sets_the_metrics_of_the_matching_containers_those_created_later_included(emulator):
    web = _running(emulator, "web-1", memory_mb=1024, disk_gb=20)
    db = _running(emulator, "db-1")
    db_before = _metrics(emulator, db)
    answer = emulator.control(
        "POST", "/metrics", json={"hostname_pattern": "web-*", "cpu_percent": 85, "memory_percent": 50}
    )
    assert answer["matched"] == 1
    assert answer["rules"] == [
        {"hostname_pattern": "web-*", "cpu_percent": 85, "memory_percent": 50, "disk_percent": None, "jitter": False}
    ]
    metrics = _metrics(emulator, web)
    assert (metrics["cpu_percent"], metrics["memory_used_mb"], metrics["memory_total_mb"]) == (85.0, 512, 1024)
    assert isinstance(metrics["cpu_percent"], float)
    # Without jitter the values stay as set; the admin reads the same.
    assert _metrics(emulator, web, token="admin") == metrics
    later = _running(emulator, "web-2")
    assert _metrics(emulator, later)["cpu_percent"] == 85.0
    assert _metrics(emulator, db)["cpu_percent"] != 85.0
    assert _metrics(emulator, db)["memory_total_mb"] == db_before["memory_total_mb"]


def test_the_last_rule_that_matches_wins_and_a_pattern_set_again_replaces_its_rule(emulator):
    web = _running(emulator, "web-1")
    emulator.control("POST", "/metrics", json={"hostname_pattern": "*", "cpu_percent": 10})
    emulator.control("POST", "/metrics", json={"hostname_pattern": "web-?", "cpu_percent": 90, "disk_percent": 50})
    assert (_metrics(emulator, web)["cpu_percent"], _metrics(emulator, web)["disk_used_gb"]) == (90.0, 9.0)
    emulator.control("POST", "/metrics", json={"hostname_pattern": "*", "cpu_percent": 20})
    assert _metrics(emulator, web)["cpu_percent"] == 20.0
    assert [rule["hostname_pattern"] for rule in emulator.control("GET", "/metrics")["rules"]] == ["web-?", "*"]


def test_set_metrics_follow_the_state_and_go_with_delete_and_reset(emulator):
    web = _running(emulator, "web-1")
    emulator.control("POST", "/metrics", json={"hostname_pattern": "web-1", "cpu_percent": 70, "memory_percent": 40})
    emulator.api("POST", "/containers/%s/stop" % web["id"])
    stopped = _metrics(emulator, web)
    assert (stopped["cpu_percent"], stopped["memory_used_mb"]) == (0.0, 0)
    emulator.api("POST", "/containers/%s/start" % web["id"])
    assert _metrics(emulator, web)["cpu_percent"] == 70.0
    assert emulator.control("DELETE", "/metrics") == {"rules": []}
    assert _metrics(emulator, web)["cpu_percent"] != 70.0
    emulator.control("POST", "/metrics", json={"hostname_pattern": "web-1", "cpu_percent": 70})
    emulator.control("POST", "/reset")
    assert emulator.control("GET", "/metrics") == {"rules": []}


def test_jitter_moves_a_set_value_a_little_only_when_asked(emulator):
    web = _running(emulator, "web-1")
    emulator.control("POST", "/metrics", json={"hostname_pattern": "web-*", "cpu_percent": 50, "jitter": True})
    cpu = _metrics(emulator, web)["cpu_percent"]
    assert 48.0 <= cpu <= 52.0
    emulator.control("POST", "/metrics", json={"hostname_pattern": "web-*", "cpu_percent": 100, "jitter": True})
    assert 98.0 <= _metrics(emulator, web)["cpu_percent"] <= 100.0


@pytest.mark.parametrize(
    "body",
    [
        {"cpu_percent": 50},
        {"hostname_pattern": "web-*"},
        {"hostname_pattern": "web-*", "cpu_percent": 101},
        {"hostname_pattern": "web-*", "cpu_percent": -1},
        {"hostname_pattern": "web-*", "memory_percent": "50"},
        {"hostname_pattern": "web-*", "cpu_percent": True},
        {"hostname_pattern": "web-*", "cpu_percent": 5, "jitter": "yes"},
        {"hostname_pattern": "", "cpu_percent": 5},
        {"hostname_pattern": "web-*", "cpu_percent": 5, "load": 3},
    ],
)
def test_bad_rules_are_refused_in_the_error_envelope(emulator, body):
    response = requests.post(emulator.url + "/_emulator/metrics", json=body, timeout=10)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "BAD_REQUEST"
    assert emulator.control("GET", "/metrics") == {"rules": []}
