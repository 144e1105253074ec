# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The executor over a fake API: plan first, apply concurrently, one wait for all, partial failures reported."""

from __future__ import annotations

import os

import pytest

from ansible_collections.hzel.cloud.plugins.module_utils import _executor as executor
from ansible_collections.hzel.cloud.plugins.module_utils._executor import (
    FleetExecutor,
    FleetFailed,
    fetch_metrics,
    fetch_metrics_spread,
    shares_of,
    spread_over,
)
from ansible_collections.hzel.cloud.plugins.module_utils._plan import FleetSettings, PlanRefused, desired_fleet
from ansible_collections.hzel.cloud.plugins.module_utils._transport import HzelBadRequest, Scrubber
from ansible_collections.hzel.cloud.tests.unit.plugins.module_utils.fake_api import (
    FakeAPI,
    FakeTime,
    record,
    refused,
    uuid,
)


def converge(api, items, check_mode=False, state="present", time=None, **settings):
    time = time or FakeTime()
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


def test_creates_slower_than_wait_timeout_are_polled_before_any_is_declared_still_provisioning():
    # Sending the fleet takes 4 x 2 s on the clock, more than wait_timeout; the API shows every container
    # running at the first look. The wait starts after the last create, so nothing fails.
    time = FakeTime()
    api = FakeAPI(provisioning_polls=0)
    create = api.create

    def slow_create(spec):
        time.sleep(2.0)
        return create(spec)

    api.create = slow_create
    outcome = converge(api, fleet(4), time=time, wait_timeout=5, parallelism=1)
    assert [r["state"] for r in outcome.records] == ["running"] * 4
    assert outcome.action_map == {"web-%d" % n: "create" for n in range(4)}
    assert [call for call in api.calls if call == ("list",)] == [("list",), ("list",)]


def test_the_wait_polls_at_least_once_even_when_the_clock_has_passed_wait_timeout():
    # A clock that jumps past the deadline between the creates and the wait (a suspended machine).
    time = FakeTime()
    api = FakeAPI(provisioning_polls=0)
    create = api.create

    def create_then_jump(spec):
        created = create(spec)
        time.now += 1000
        return created

    api.create = create_then_jump
    outcome = converge(api, fleet(1), time=time, wait_timeout=1)
    assert outcome.records[0]["state"] == "running" and ("get", outcome.records[0]["id"]) in api.calls


def test_two_containers_of_one_hostname_named_by_id_get_one_entry_each():
    first, second = (
        dict(record("twin", state="stopped"), id=uuid(71)),
        dict(record("twin", state="stopped"), id=uuid(72)),
    )
    api = FakeAPI([first, second, record("solo", state="stopped")])
    outcome = converge(api, [{"id": uuid(71)}, {"id": uuid(72)}, {"hostname": "solo"}], state="running")
    assert outcome.action_map == {"twin (%s)" % uuid(71): "start", "twin (%s)" % uuid(72): "start", "solo": "start"}
    assert [d["before_header"] for d in outcome.diffs()] == ["twin (%s)" % uuid(71), "twin (%s)" % uuid(72), "solo"]


def test_two_failed_containers_of_one_hostname_are_two_failures():
    first, second = (
        dict(record("twin", state="stopped"), id=uuid(81)),
        dict(record("twin", state="stopped"), id=uuid(82)),
    )
    api = FakeAPI([first, second], fail={"twin": refused()})
    with pytest.raises(FleetFailed) as failure:
        converge(api, [{"id": uuid(81)}, {"id": uuid(82)}], state="running")
    assert set(failure.value.outcome.failure_map) == {"twin (%s)" % uuid(81), "twin (%s)" % uuid(82)}
    assert "2 of 2 containers did not converge" in failure.value.message
    assert (
        "twin (%s): The hzel API" % uuid(81) in failure.value.message
        and "twin (%s): The hzel API" % uuid(82) in failure.value.message
    )


def test_a_refused_create_keeps_the_api_code_and_status_for_the_fleet_and_the_item():
    bad = HzelBadRequest("The hzel API refused POST /containers: memory_mb: too large", 400, "BAD_REQUEST")
    with pytest.raises(FleetFailed) as failure:
        converge(FakeAPI(fail={"web-1": bad}), fleet(3))
    assert (failure.value.code, failure.value.status) == ("BAD_REQUEST", 400)
    assert failure.value.outcome.failure_details == {"web-1": {"error_code": "BAD_REQUEST", "status": 400}}


def test_a_fleet_of_one_fails_with_the_api_code_and_status_of_its_refused_create():
    bad = HzelBadRequest("The hzel API refused POST /containers: memory_mb: too large", 400, "BAD_REQUEST")
    with pytest.raises(FleetFailed) as failure:
        converge(FakeAPI(fail={"web-0": bad}), fleet(1))
    assert (failure.value.code, failure.value.status) == ("BAD_REQUEST", 400)
    assert failure.value.message == bad.message


def test_failures_of_different_codes_leave_the_fleet_code_unset_and_keep_each_items():
    bad = HzelBadRequest("refused", 400, "BAD_REQUEST")
    api = FakeAPI(fail={"web-0": bad, "web-1": refused()})
    with pytest.raises(FleetFailed) as failure:
        converge(api, fleet(2) + [{"hostname": "fail-1"}])
    assert failure.value.code is None and failure.value.status is None
    assert failure.value.outcome.failure_details == {
        "web-0": {"error_code": "BAD_REQUEST", "status": 400},
        "web-1": {"status": 503},
    }


@pytest.mark.parametrize(
    "error",
    [
        RecursionError("maximum recursion depth exceeded while decoding a JSON array from a unicode string"),
        ValueError("Expecting value: line 1 column 1 (char 0)"),
    ],
)
def test_any_exception_of_one_create_fails_that_item_and_the_fleet_reports_everything(error):
    api = FakeAPI(fail={"web-1": error})
    with pytest.raises(FleetFailed) as failure:
        converge(api, fleet(3) + [{"hostname": "old-1"}], parallelism=4)
    outcome = failure.value.outcome
    assert outcome.action_map == {"web-0": "create", "web-1": "none", "web-2": "create", "old-1": "create"}
    assert [r and r["state"] for r in outcome.records] == ["running", None, "running", "running"]
    assert list(outcome.failure_map) == ["web-1"]
    assert outcome.failure_map["web-1"].startswith("Unexpected error (%s): " % type(error).__name__)
    assert "1 of 4 containers did not converge (the others did)" in failure.value.message


def test_an_unexpected_exception_is_scrubbed_and_bounded():
    secret = "fleet-secret-token-1234"
    api = FakeAPI(fail={"web-0": ValueError("bad reply %s %r " % (secret, secret) + "x" * 50000)})
    api.scrub = Scrubber(secret)
    with pytest.raises(FleetFailed) as failure:
        converge(api, fleet(1))
    assert secret not in failure.value.message and secret[:8] not in failure.value.message
    assert failure.value.message.startswith("Unexpected error (ValueError): bad reply ********")
    # The class name, then at most 300 characters of the exception's own text.
    assert len(failure.value.message) <= len("Unexpected error (ValueError): ") + 300


def test_an_unexpected_exception_while_waiting_fails_the_waiting_items_and_keeps_what_was_done():
    api = FakeAPI(provisioning_polls=5)
    plan_read = api.list

    def list_once_then_fail():
        if api.calls:
            raise RecursionError("maximum recursion depth exceeded")
        return plan_read()

    api.list = list_once_then_fail
    with pytest.raises(FleetFailed) as failure:
        converge(api, fleet(2))
    outcome = failure.value.outcome
    assert outcome.action_map == {"web-0": "create", "web-1": "create"} and outcome.changed
    assert set(outcome.failure_map.values()) == {
        "while waiting for provisioning: Unexpected error (RecursionError): maximum recursion depth exceeded"
    }


def test_a_create_that_found_its_own_earlier_attempt_is_a_create_and_a_change():
    api = FakeAPI()
    mine = record("web-1", state="running")

    def create_found_own(spec):
        # The reply of the first attempt was lost; the lookup found the container it made (no 'adopted').
        api.containers[mine["id"]] = dict(mine)
        return dict(mine)

    api.create = create_found_own
    outcome = converge(api, [{"hostname": "web-1", "state": "running"}])
    assert outcome.actions == ["create"] and outcome.changed
    assert outcome.records[0] == mine


def test_a_create_that_found_its_own_earlier_attempt_is_still_brought_to_its_state():
    api = FakeAPI()
    mine = record("cold-1", state="running")

    def create_found_own(spec):
        api.containers[mine["id"]] = dict(mine)
        return dict(mine)

    api.create = create_found_own
    outcome = converge(api, [{"hostname": "cold-1", "state": "stopped"}])
    assert outcome.actions == ["create"] and outcome.records[0]["state"] == "stopped"
    assert [call[0] for call in api.posts] == ["stop"]


def test_an_adopted_container_that_needs_nothing_is_no_change():
    api = FakeAPI()
    theirs = record("web-1", state="running")
    api.create = lambda spec: dict(theirs, adopted=True)
    outcome = converge(api, [{"hostname": "web-1", "state": "running"}])
    assert outcome.actions == ["none"] and not outcome.changed
    assert outcome.records[0] == theirs and "adopted" not in outcome.records[0]


def test_metrics_failures_of_two_containers_of_one_hostname_are_two_entries():
    first, second = dict(record("twin"), id=uuid(91)), dict(record("twin"), id=uuid(92))
    api = FakeAPI([first, second], fail={"twin": refused("no metrics")})
    records, failures = fetch_metrics(api, [first, second], workers=2)
    assert failures == {"twin (%s)" % uuid(91): "no metrics", "twin (%s)" % uuid(92): "no metrics"}
    assert [r["metrics"] for r in records] == [None, None]


def test_metrics_of_one_container_failing_on_any_exception_lose_that_host_only():
    api = FakeAPI([record("web-%d" % n) for n in range(3)], fail={"web-1": RecursionError("too deep")})
    records, failures = fetch_metrics(api, list(api.containers.values()), workers=2)
    assert failures == {"web-1": "Unexpected error (RecursionError): too deep"}
    assert [r["metrics"] is None for r in records] == [False, True, False]


def test_items_derived_from_the_list_read_are_planned_from_that_same_read():
    api = FakeAPI([record("web-1", state="stopped"), record("db-1")])
    seen = []

    def derive(current):
        seen.append(sorted(r["hostname"] for r in current))
        return desired_fleet(
            [{"hostname": r["hostname"]} for r in current if r["hostname"].startswith("web-")], "running"
        )

    time = FakeTime()
    outcome = FleetExecutor(api, FleetSettings(), sleep=time.sleep, clock=time.clock).converge_derived(derive)
    assert seen == [["db-1", "web-1"]] and outcome.action_map == {"web-1": "start"}
    assert [call[0] for call in api.calls] == ["list", "start"]


def test_a_refusal_while_deriving_the_items_is_raised_before_any_post():
    api = FakeAPI([record("web-1")])

    def derive(current):
        raise PlanRefused("refused from what was read", {"web-1": "no"})

    with pytest.raises(PlanRefused):
        FleetExecutor(api, FleetSettings()).converge_derived(derive)
    assert api.calls == [("list",)]


def test_a_fleet_where_every_container_failed_does_not_claim_that_others_converged():
    api = FakeAPI(fail={"web-0": refused(), "web-1": refused()})
    with pytest.raises(FleetFailed) as failure:
        converge(api, fleet(2), state="running")
    assert "2 of 2 containers did not converge:" in failure.value.message
    assert "the others" not in failure.value.message


def test_metrics_spread_over_processes_come_back_in_order_with_each_failure_named():
    records = [record("web-%d" % n) for n in range(50)]
    apis = [
        FakeAPI(records, fail={"web-7": refused("no metrics"), "web-30": RecursionError("deep")}) for _index in range(3)
    ]
    fetched, failures = fetch_metrics_spread(apis, records, workers=6)
    # Read in other processes: this one's clients were never asked.
    assert not any(api.calls for api in apis)
    assert [r["hostname"] for r in fetched] == ["web-%d" % n for n in range(50)]
    assert failures == {"web-7": "no metrics", "web-30": "Unexpected error (RecursionError): deep"}
    assert all(r["metrics"] == apis[0].metrics(r["id"]) for r in fetched if r["hostname"] not in failures)


def test_a_metrics_process_that_dies_fails_its_hosts_only_and_says_so():
    records = [record("web-%d" % n) for n in range(10)]
    dying = FakeAPI(records)
    dying.metrics = lambda container_id: os._exit(3)
    fetched, failures = fetch_metrics_spread([FakeAPI(records), dying], records, workers=2)
    # The second process took records 1, 3, 5, 7 and 9.
    assert sorted(failures) == ["web-%d" % n for n in (1, 3, 5, 7, 9)]
    assert set(failures.values()) == {"the process that read this host's metrics ended without an answer (exit code 3)"}
    assert [r["metrics"] is None for r in fetched] == [False, True] * 5


def test_metrics_are_spread_over_processes_only_where_there_are_enough_reads(monkeypatch):
    monkeypatch.setattr(executor.sys, "platform", "linux")
    assert spread_over(999, 128, cpus=8) == 1
    assert spread_over(2500, 128, cpus=8) == 2
    # One per CPU (at most 4), or one per 32 requests in flight, whichever is more; at most 8 when left to the machine.
    assert spread_over(100000, 32, cpus=8) == 4
    assert spread_over(100000, 32, cpus=1) == 1
    assert spread_over(100000, 128, cpus=2) == 4
    assert spread_over(100000, 256, cpus=2) == 8
    assert spread_over(100000, 256, processes=16) == 16
    assert spread_over(3000, 8, processes=16) == 3
    # Never more processes than requests in flight, which the processes share.
    assert spread_over(100000, 1, cpus=8) == 1
    assert spread_over(100000, 3, processes=16) == 3
    assert shares_of(130, 5) == [26] * 5 and shares_of(10, 4) == [3, 3, 2, 2]


def test_a_part_whose_process_cannot_be_started_is_read_in_this_process(monkeypatch):
    context = executor.multiprocessing.get_context("fork")

    def refused(self):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(context.Process, "start", refused)
    records = [record("web-%d" % n) for n in range(8)]
    apis = [FakeAPI(records) for _index in range(2)]
    fetched, failures = fetch_metrics_spread(apis, records, workers=2)
    assert not failures and all(r["metrics"] for r in fetched)
    assert sorted(call[1] for api in apis for call in api.calls) == sorted(r["id"] for r in records)


def test_a_metrics_process_whose_parent_is_gone_makes_no_request_and_sends_nothing():
    context = executor.multiprocessing.get_context("fork")
    records = [record("web-%d" % n) for n in range(4)]
    api = FakeAPI(records)
    # A request would end the process with exit code 7.
    api.metrics = lambda container_id: os._exit(7)
    receive, send = context.Pipe(duplex=False)
    # Its parent is said to be another process: every read stops before its request.
    child = context.Process(target=executor._read_part, args=(api, records, 2, send, 1), daemon=True)
    child.start()
    send.close()
    with pytest.raises(EOFError):
        receive.recv()
    child.join()
    assert child.exitcode == 1


def test_metrics_stay_in_one_process_by_default_off_linux(monkeypatch):
    monkeypatch.setattr(executor.sys, "platform", "darwin")
    assert spread_over(100000, 128, cpus=8) == 1
    assert spread_over(100000, 128, processes=4) == 4
