# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""--budget: a request budget per token, told in RateLimit headers, and 429 with Retry-After once spent."""

import os
import subprocess
import sys
import time

import pytest
import requests
from conftest import EMULATOR_DIR, Emulator


@pytest.fixture
def budgeted(tmp_path, request):
    extra = getattr(request, "param", [])
    instance = Emulator(str(tmp_path / "hzel.sqlite3"), 0.3, ["--budget", "3/100s"] + extra).start()
    yield instance
    instance.stop()


def _limits(response, prefix="ratelimit-"):
    return {name[len(prefix) :]: value for name, value in response.headers.lower_items() if name.startswith(prefix)}


def test_replies_tell_the_budget_and_a_spent_budget_answers_429_with_retry_after(budgeted):
    seen = [budgeted.api("GET", "/containers") for _attempt in range(3)]
    assert [response.status_code for response in seen] == [200, 200, 200]
    assert [_limits(response)["remaining"] for response in seen] == ["2", "1", "0"]
    assert {_limits(response)["limit"] for response in seen} == {"3"}
    assert all(1 <= int(_limits(response)["reset"]) <= 100 for response in seen)
    spent = budgeted.api("GET", "/containers")
    assert spent.status_code == 429
    assert spent.json()["error"]["code"] == "RATE_LIMITED" and set(spent.json()) == {"error"}
    assert 1 <= int(spent.headers["Retry-After"]) <= 100
    assert _limits(spent)["remaining"] == "0"
    # No X-RateLimit-* forms unless asked for.
    assert not _limits(spent, "x-ratelimit-")


def test_each_token_has_its_own_budget_and_every_request_spends_it(budgeted):
    for _attempt in range(3):
        budgeted.api("GET", "/containers/01942cf7-0000-7000-8000-000000000000")  # a 404 counts too
    assert budgeted.api("GET", "/containers").status_code == 429
    bob = budgeted.api("GET", "/containers", token="bob")
    assert (bob.status_code, _limits(bob)["remaining"]) == (200, "2")


def test_the_control_plane_is_not_budgeted_and_a_reset_renews_the_budgets(budgeted):
    for _attempt in range(4):
        budgeted.api("GET", "/containers")
    health = requests.get(budgeted.url + "/_emulator/health", timeout=10)
    assert health.status_code == 200 and not _limits(health)
    budgeted.control("POST", "/reset")
    renewed = budgeted.api("GET", "/containers")
    assert (renewed.status_code, _limits(renewed)["remaining"]) == (200, "2")


@pytest.mark.parametrize("budgeted", [["--budget-x-headers"]], indirect=True)
def test_the_github_forms_give_the_reset_in_unix_time(budgeted):
    before = time.time()
    response = budgeted.api("GET", "/containers")
    github = _limits(response, "x-ratelimit-")
    assert (github["limit"], github["remaining"], github["used"], github["resource"]) == ("3", "2", "1", "core")
    assert before <= int(github["reset"]) <= time.time() + 101
    assert _limits(response)["remaining"] == "2"


@pytest.mark.parametrize("budgeted", [["--budget-quiet"]], indirect=True)
def test_a_quiet_budget_tells_nothing_until_it_answers_429_and_the_stats_count_the_refusals(budgeted):
    seen = [budgeted.api("GET", "/containers") for _attempt in range(5)]
    assert [response.status_code for response in seen] == [200, 200, 200, 429, 429]
    assert not any(_limits(response) or _limits(response, "x-ratelimit-") for response in seen)
    assert 1 <= int(seen[-1].headers["Retry-After"]) <= 100
    stats = budgeted.control("GET", "/stats")
    assert stats["budget_refused"] == 2 and stats["total"] == 5
    budgeted.control("POST", "/reset")
    assert budgeted.control("GET", "/stats")["budget_refused"] == 0


def test_without_a_budget_replies_carry_no_ratelimit_headers(emulator):
    response = emulator.api("GET", "/containers")
    assert response.status_code == 200 and not _limits(response) and not _limits(response, "x-ratelimit-")


@pytest.mark.parametrize("args", [["--budget", "ten/10s"], ["--budget", "0/10s"], ["--budget-x-headers"]])
def test_a_bad_budget_is_refused_at_start(tmp_path, args):
    result = subprocess.run(
        [sys.executable, "-m", "hzel_emulator", "--db", str(tmp_path / "hzel.sqlite3")] + args,
        env=dict(os.environ, PYTHONPATH=EMULATOR_DIR),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "budget" in result.stderr, result


@pytest.mark.parametrize(
    "text, expected", [("100/10s", (100, 10.0)), ("60/1m", (60, 60.0)), ("5000/1h", (5000, 3600.0)), ("5/2", (5, 2.0))]
)
def test_a_budget_is_requests_per_window(text, expected):
    from hzel_emulator.faults import parse_budget

    assert parse_budget(text) == expected
