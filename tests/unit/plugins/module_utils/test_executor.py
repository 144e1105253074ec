# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The executor over a fake API: plan first, apply concurrently, one wait for all, partial failures reported."""

from __future__ import annotations

import pytest

from ansible_collections.hzel.cloud.plugins.module_utils._executor import FleetExecutor, FleetFailed, fetch_metrics
from ansible_collections.hzel.cloud.plugins.module_utils._plan import FleetSettings, PlanRefused, desired_fleet
from ansible_collections.hzel.cloud.tests.unit.plugins.module_utils.fake_api import FakeAPI, FakeTime, record, refused


def converge(api, items, check_mode=False, state="present", **settings):
    time = FakeTime()
    executor = FleetExecutor(api, FleetSettings(**settings), check_mode=check_mode, sleep=time.sleep, clock=time.clock)
    return executor.converge(desired_fleet(items, state))


def fleet(count, prefix="web-"):
    return [{"hostname": "%s%d" % (prefix, number)} for number in range(count)]


def test_an_unchanged_fleet_of_a_thousand_costs_one_request():
    api = FakeAPI([record("web-%d" % n) for n in range(1000)])
    outcome = converge(api, fleet(1000), state="running")
    assert api.calls == [("list",)] and not outcome.changed
    assert set(outcome.action_map.values()) == {"none"} and len(outcome.records) == 1000


def test_new_containers_are_created_concurrently_within_the_pool_bound_and_waited_for_together():
    api = FakeAPI(provisioning_polls=3, request_seconds=0.01)
    outcome = converge(api, fleet(30), state="running", parallelism=5)
    creates = [call for call in api.calls if call[0] == "create"]
    polls = [call for call in api.calls if call[0] in ("list", "get")]
    assert len(creates) == 30 and api.most_in_flight == 5
    # One list read to plan, then one request per poll round for all thirty.
    assert polls[0] == ("list",) and len(polls) == 1 + 4 and all(call == ("list",) for call in polls)
    assert [r["state"] for r in outcome.records] == ["running"] * 30
    assert outcome.action_map == {"web-%d" % n: "create" for n in range(30)}


def test_the_records_come_back_in_the_order_of_the_input():
    api = FakeAPI([record("b-1", state="stopped"), record("a-1")])
    outcome = converge(api, [{"hostname": "c-1"}, {"hostname": "a-1"}, {"hostname": "b-1"}], state="running")
    assert [r["hostname"] for r in outcome.records] == ["c-1", "a-1", "b-1"]
    assert outcome.actions == ["create", "none", "start"]


def test_a_new_container_that_should_be_stopped_is_stopped_after_provisioning():
    api = FakeAPI()
    outcome = converge(api, [{"hostname": "cold-1", "state": "stopped"}])
    assert [call[0] for call in api.posts] == ["create", "stop"]
    assert outcome.records[0]["state"] == "stopped" and outcome.actions == ["create"]


def test_check_mode_returns_the_plan_and_sends_no_post():
    api = FakeAPI([record("web-1", state="stopped")])
    outcome = converge(api, fleet(3), check_mode=True, state="running")
    assert not api.posts and outcome.actions == ["create", "start", "create"]
    assert [r["state"] for r in outcome.records] == ["running"] * 3 and outcome.records[0]["id"] is None


def test_a_refused_plan_sends_no_post_at_all():
    api = FakeAPI([record("web-0", cpu_cores=2)])
    with pytest.raises(PlanRefused):
        converge(api, [{"hostname": "web-0", "cpu_cores": 4}] + fleet(20, "new-"))
    assert not api.posts and api.calls == [("list",)]


def test_a_partial_failure_converges_the_others_and_reports_everything_done():
    api = FakeAPI(fail={"web-3": refused()})
    with pytest.raises(FleetFailed) as failure:
        converge(api, fleet(5) + [{"hostname": "fail-1"}], state="running")
    outcome = failure.value.outcome
    assert "2 of 6 containers did not converge (the others did)" in failure.value.message
    assert "web-3: The hzel API answered POST" in failure.value.message
    assert "fail-1: Container fail-1" in failure.value.message and "'failed'" in failure.value.message
    assert outcome.action_map == {
        "web-0": "create",
        "web-1": "create",
        "web-2": "create",
        "web-3": "none",
        "web-4": "create",
        "fail-1": "create",
    }
    assert [r and r["state"] for r in outcome.records] == ["running", "running", "running", None, "running", "failed"]
    assert set(outcome.failure_map) == {"web-3", "fail-1"}


def test_a_fleet_of_one_fails_with_its_own_message():
    api = FakeAPI()
    with pytest.raises(FleetFailed) as failure:
        converge(api, [{"hostname": "fail-1"}])
    assert failure.value.message.startswith("Container fail-1 (") and "ended in state 'failed'" in failure.value.message


def test_the_wait_timeout_is_for_the_whole_fleet_and_names_what_is_still_provisioning():
    api = FakeAPI(provisioning_polls=10**6)
    with pytest.raises(FleetFailed) as failure:
        converge(api, fleet(3), wait_timeout=5)
    assert "3 of 3 containers did not converge" in failure.value.message
    assert "still 'provisioning' after waiting 5s (wait_timeout)" in failure.value.message
    # Polls start at 0.1 s and back off to 0.4 s: a few dozen rounds, one list read each.
    rounds = [call for call in api.calls if call == ("list",)]
    assert 10 < len(rounds) < 40


def test_without_wait_new_containers_are_returned_provisioning():
    api = FakeAPI(provisioning_polls=5)
    outcome = converge(api, fleet(2), wait=False)
    assert [r["state"] for r in outcome.records] == ["provisioning"] * 2
    assert [call[0] for call in api.calls] == ["list", "create", "create"]


def test_a_create_that_another_run_made_meanwhile_is_adopted_and_then_converged():
    api = FakeAPI()
    taken = record("web-1", state="running")

    def create_raced(spec):
        api.containers[taken["id"]] = dict(taken)
        return dict(taken, adopted=True)

    api.create = create_raced
    outcome = converge(api, [{"hostname": "web-1", "state": "stopped"}])
    assert outcome.actions == ["stop"] and outcome.records[0]["state"] == "stopped"


def test_an_adopted_container_with_another_spec_is_a_failure_that_says_why():
    api = FakeAPI()
    api.create = lambda spec: dict(record("web-1", cpu_cores=4), adopted=True)
    with pytest.raises(FleetFailed) as failure:
        converge(api, [{"hostname": "web-1", "cpu_cores": 2}])
    assert "created meanwhile by another run" in failure.value.message and "cpu_cores is 4" in failure.value.message


def test_metrics_failures_lose_one_host_not_the_fleet():
    api = FakeAPI([record("web-%d" % n) for n in range(20)], fail={"web-7": refused("rate limited for good")})
    records, failures = fetch_metrics(api, list(api.containers.values()), workers=4)
    assert len(records) == 20 and failures == {"web-7": "rate limited for good"}
    assert [r["metrics"] is None for r in records].count(True) == 1 and api.most_in_flight <= 4
