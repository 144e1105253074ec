# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.hzel.cloud.plugins.module_utils._executor import FleetExecutor, FleetFailed
from ansible_collections.hzel.cloud.plugins.module_utils._options import InvalidParameters
from ansible_collections.hzel.cloud.plugins.module_utils._plan import FleetSettings, PlanRefused, desired_fleet
from ansible_collections.hzel.cloud.plugins.module_utils._scale import (
    GroupResolver,
    describe_group,
    parse_pattern,
    scale_group,
    scale_items,
)
from ansible_collections.hzel.cloud.plugins.module_utils._transport import HzelError
from ansible_collections.hzel.cloud.tests.unit.plugins.module_utils.fake_api import FakeAPI, FakeTime, refused
from ansible_collections.hzel.cloud.tests.unit.plugins.module_utils.fake_api import record as fake_record

SPEC = {"cpu_cores": 2, "memory_mb": 1024}


def record(hostname, state="running", number=0):
    return {
        "id": "01942cf7-5b1e-7c3a-9d2e-%012d" % number,
        "user_id": "01942cf6-0a1b-7c2d-8e3f-405162738495",
        "hostname": hostname,
        "state": state,
        "cpu_cores": 2,
        "memory_mb": 1024,
        "disk_gb": 18,
        "created_at": "2026-11-30T00:00:00Z",
    }


def plan(current, count, pattern="web-{index}", index_start=1, spec=None):
    return scale_items(scale_group(pattern, count, index_start, SPEC if spec is None else spec), current)


def states(result):
    return [(item["hostname"], item["state"]) for item in result.items]


def test_scale_up_from_nothing_creates_the_lowest_indexes_from_index_start():
    assert states(plan([], 3)) == [("web-1", "running"), ("web-2", "running"), ("web-3", "running")]
    assert states(plan([], 2, index_start=0)) == [("web-0", "running"), ("web-1", "running")]
    assert all(item["cpu_cores"] == 2 and item["memory_mb"] == 1024 for item in plan([], 3).items)


def test_index_start_only_places_new_members_and_members_below_it_still_count():
    current = [record("web-1"), record("web-2", "stopped", 1)]
    assert states(plan(current, 1, index_start=10)) == [("web-1", "running")]
    assert states(plan(current, 3, index_start=10)) == [
        ("web-1", "running"),
        ("web-2", "running"),
        ("web-10", "running"),
    ]


def test_only_hostnames_the_pattern_renders_in_full_are_members():
    current = [
        record("web-1"),
        record("web-01", number=1),
        record("web-1a", number=2),
        record("xweb-2", number=3),
        record("web-", number=4),
        record("web-\u0663", number=5),
        record("db-1", number=6),
    ]
    result = plan(current, 1)
    assert [member["hostname"] for member in result.members] == ["web-1"]
    assert states(result) == [("web-1", "running")]


def test_zero_padding_selects_only_padded_names():
    current = [record("web-01"), record("web-2", number=1), record("web-100", number=2)]
    result = plan(current, 3, pattern="web-{index:02d}")
    assert [member["hostname"] for member in result.members] == ["web-01", "web-100"]
    assert states(result) == [("web-01", "running"), ("web-02", "running"), ("web-100", "running")]


def test_provisioning_members_count_and_stopped_ones_are_started_before_any_create():
    current = [record("web-1", "provisioning"), record("web-2", "stopped", 1), record("web-5", "stopped", 2)]
    assert states(plan(current, 2)) == [("web-1", "running"), ("web-2", "running")]
    assert states(plan(current, 4)) == [
        ("web-1", "running"),
        ("web-2", "running"),
        ("web-3", "running"),
        ("web-5", "running"),
    ]


def test_scale_down_stops_the_highest_indexes_and_leaves_stopped_members_alone():
    current = [record("web-%d" % index, number=index) for index in (1, 2, 3, 10)] + [record("web-4", "stopped", 4)]
    assert states(plan(current, 2)) == [
        ("web-1", "running"),
        ("web-2", "running"),
        ("web-3", "stopped"),
        ("web-10", "stopped"),
    ]


def test_count_zero_stops_every_active_member_and_creates_nothing():
    current = [record("web-1"), record("web-2", "provisioning", 1), record("web-3", "stopped", 2)]
    assert states(plan(current, 0)) == [("web-1", "stopped"), ("web-2", "stopped")]
    assert plan([], 0).items == []


def test_failed_members_neither_count_nor_give_up_their_names():
    current = [record("web-1", "failed"), record("web-2")]
    result = plan(current, 2)
    assert states(result) == [("web-2", "running"), ("web-3", "running")]
    assert [member["hostname"] for member in result.failed] == ["web-1"]


def test_members_that_stay_carry_the_spec_so_that_drift_is_refused_by_the_plan():
    result = plan([record("web-1")], 1, spec={"cpu_cores": 4})
    assert result.items == [{"hostname": "web-1", "cpu_cores": 4, "state": "running"}]
    stopping = plan([record("web-1")], 0, spec={"cpu_cores": 4})
    assert stopping.items == [{"hostname": "web-1", "state": "stopped"}]


def test_the_items_are_a_valid_fleet():
    desired = desired_fleet(plan([record("web-2", "stopped")], 3).items)
    assert [(item.hostname, item.state) for item in desired] == [
        ("web-1", "running"),
        ("web-2", "running"),
        ("web-3", "running"),
    ]


def test_a_hostname_two_visible_containers_hold_refuses_the_count():
    with pytest.raises(InvalidParameters, match=r"more than one visible container holds \(web-1\)"):
        plan([record("web-1"), record("web-1", "stopped", 1)], 1)


@pytest.mark.parametrize(
    "pattern",
    [
        "web",
        "web-{index}-{index}",
        "{index}",
        "{index}-web",
        "Web-{index}",
        "web_{index}",
        "web-{idx}",
        "web-{index:2d}",
        "web-{index}{",
        "web-{index}.example.com",
        "a" * 60 + "{index}",
        42,
        None,
    ],
)
def test_a_pattern_that_could_select_or_render_something_else_is_refused(pattern):
    with pytest.raises(InvalidParameters, match="hostname_pattern"):
        parse_pattern(pattern)


@pytest.mark.parametrize("count", [-1, 1.5, "3", True, 1001])
def test_a_count_out_of_bounds_is_refused(count):
    with pytest.raises(InvalidParameters, match="count"):
        plan([], count)


# The count group through the executor, over the fake API: one list read, the ordinary plan, apply and wait.


def scale(api, count, pattern="web-{index}", check_mode=False, spec=None, **settings):
    time = FakeTime()
    executor = FleetExecutor(api, FleetSettings(**settings), check_mode=check_mode, sleep=time.sleep, clock=time.clock)
    resolver = GroupResolver(scale_group(pattern, count, spec=spec))
    outcome = executor.converge_derived(resolver)
    return outcome, resolver.view(outcome.records)


def hostnames(records):
    return [record["hostname"] for record in records]


def test_an_unchanged_group_costs_exactly_one_request():
    api = FakeAPI([fake_record("web-%d" % index) for index in range(1, 201)])
    outcome, group = scale(api, 200)
    assert api.calls == [("list",)] and not outcome.changed
    assert len(group["active"]) == 200 and group["stopped"] == group["failed"] == []


def test_scaling_up_from_nothing_creates_the_lowest_indexes_and_waits_for_them_together():
    api = FakeAPI([fake_record("db-1")], provisioning_polls=2)
    outcome, group = scale(api, 3, spec={"cpu_cores": 2})
    # The creates run concurrently, so they may reach the API in any order.
    assert sorted(api.posts, key=lambda call: call[1]["hostname"]) == [
        ("create", {"hostname": "web-%d" % index, "cpu_cores": 2}) for index in (1, 2, 3)
    ]
    # One list read to plan, then one list read per poll round for the three together.
    assert [call[0] for call in api.calls if call[0] != "create"] == ["list"] * 4
    assert outcome.action_map == {"web-1": "create", "web-2": "create", "web-3": "create"}
    assert group["active"] == ["web-1", "web-2", "web-3"] and hostnames(group["members"]) == group["active"]


def test_scaling_down_stops_the_highest_indexes_and_nothing_else():
    api = FakeAPI(
        [fake_record("web-%d" % index) for index in (1, 2, 3)] + [fake_record("web-01"), fake_record("webx-1")]
    )
    outcome, group = scale(api, 1)
    stopped = {api.containers[call[1]]["hostname"] for call in api.posts}
    assert stopped == {"web-2", "web-3"} and {call[0] for call in api.posts} == {"stop"}
    assert outcome.action_map == {"web-1": "none", "web-2": "stop", "web-3": "stop"}
    assert group["active"] == ["web-1"] and group["stopped"] == ["web-2", "web-3"]
    others = [c for c in api.containers.values() if c["hostname"] in ("web-01", "webx-1")]
    assert [c["state"] for c in others] == ["running", "running"]


def test_scaling_back_up_starts_stopped_members_before_creating_any():
    api = FakeAPI([fake_record("web-1"), fake_record("web-2", "stopped"), fake_record("web-3", "stopped")])
    outcome, group = scale(api, 2)
    assert [(call[0], api.containers[call[1]]["hostname"]) for call in api.posts] == [("start", "web-2")]
    assert outcome.action_map == {"web-1": "none", "web-2": "start"}
    assert group["active"] == ["web-1", "web-2"] and group["stopped"] == ["web-3"]


def test_count_zero_stops_every_member_and_creates_nothing():
    api = FakeAPI([fake_record("web-1"), fake_record("web-2", "provisioning")])
    outcome, group = scale(api, 0)
    assert sorted(call[0] for call in api.posts) == ["stop", "stop"]
    assert group["active"] == [] and group["stopped"] == ["web-1", "web-2"]
    assert scale(FakeAPI(), 0)[0].action_map == {}


def test_drift_in_a_member_that_stays_or_starts_refuses_the_plan_before_any_post():
    api = FakeAPI([fake_record("web-1", cpu_cores=1), fake_record("web-2", "stopped", cpu_cores=1)])
    with pytest.raises(PlanRefused) as refusal:
        scale(api, 3, spec={"cpu_cores": 2})
    assert api.calls == [("list",)]
    # Named by hostname: a count group has no list positions.
    assert set(refusal.value.problems) == {"web-1", "web-2"}
    assert "cpu_cores is 1, the parameters ask for 2" in refusal.value.problems["web-2"]
    assert refusal.value.message.startswith("2 items cannot be converged, so nothing was changed")


def test_a_member_that_is_stopped_is_not_compared_with_the_spec():
    api = FakeAPI([fake_record("web-1", cpu_cores=1), fake_record("web-2", cpu_cores=4)])
    outcome, _group = scale(api, 1, spec={"cpu_cores": 1})
    assert outcome.action_map == {"web-1": "none", "web-2": "stop"}


def test_failed_members_are_reported_not_counted_and_their_names_not_reused():
    api = FakeAPI([fake_record("web-1", "failed"), fake_record("web-2")])
    time = FakeTime()
    resolver = GroupResolver(scale_group("web-{index}", 2))
    outcome = FleetExecutor(api, FleetSettings(), sleep=time.sleep, clock=time.clock).converge_derived(resolver)
    assert outcome.action_map == {"web-2": "none", "web-3": "create"}
    assert resolver.failed_before() == ["web-1"]
    group = resolver.view(outcome.records)
    assert group["failed"] == ["web-1"] and group["active"] == ["web-2", "web-3"]
    assert hostnames(group["members"]) == ["web-1", "web-2", "web-3"]


def test_members_that_fail_while_provisioning_fail_the_task_and_show_in_the_group():
    resolver = GroupResolver(scale_group("fail-{index}", 2))
    time = FakeTime()
    with pytest.raises(FleetFailed) as failure:
        FleetExecutor(FakeAPI(), FleetSettings(), sleep=time.sleep, clock=time.clock).converge_derived(resolver)
    assert set(failure.value.outcome.failure_map) == {"fail-1", "fail-2"}
    group = resolver.view(failure.value.outcome.records)
    assert group["failed"] == ["fail-1", "fail-2"] and group["active"] == []
    # Failed before this run: none; the warning is for members found failed.
    assert resolver.failed_before() == []


def test_a_create_that_fails_makes_no_member_and_the_others_still_converge():
    api = FakeAPI(fail={"web-2": refused()})
    resolver = GroupResolver(scale_group("web-{index}", 3))
    time = FakeTime()
    with pytest.raises(FleetFailed) as failure:
        FleetExecutor(api, FleetSettings(), sleep=time.sleep, clock=time.clock).converge_derived(resolver)
    group = resolver.view(failure.value.outcome.records)
    assert group["active"] == ["web-1", "web-3"] and hostnames(group["members"]) == ["web-1", "web-3"]


def test_check_mode_predicts_the_group_and_sends_no_post():
    api = FakeAPI([fake_record("web-1"), fake_record("web-2", "stopped")])
    outcome, group = scale(api, 3, check_mode=True)
    assert api.calls == [("list",)]
    assert outcome.action_map == {"web-1": "none", "web-2": "start", "web-3": "create"}
    assert group["active"] == ["web-1", "web-2", "web-3"] and group["members"][2]["id"] is None
    assert [diff["before_header"] for diff in outcome.diffs()] == ["web-2", "web-3"]


def test_without_wait_new_members_are_provisioning_and_count_as_active():
    outcome, group = scale(FakeAPI(provisioning_polls=5), 2, wait=False)
    assert [record["state"] for record in outcome.records] == ["provisioning", "provisioning"]
    assert group["active"] == ["web-1", "web-2"]


@pytest.mark.parametrize(
    "arguments, says",
    [
        ({"count": -1}, "count must be at least 0"),
        ({"count": 2, "index_start": -1}, "index_start must be at least 0"),
        ({"count": 2, "spec": {"cpu_cores": 0}}, "cpu_cores must be a positive integer (got 0)"),
        ({"count": 2, "spec": {"disk_gb": 99}}, "disk_gb must be between 18 and 32 (got 99)"),
        ({"count": 2, "state": "running"}, "state does not apply with count"),
        ({"count": 2, "hostname_pattern": "{index}"}, "hostname_pattern must start with a literal prefix"),
    ],
)
def test_every_group_parameter_is_checked_before_any_request(arguments, says):
    arguments = dict({"hostname_pattern": "web-{index}"}, **arguments)
    with pytest.raises(HzelError) as refusal:
        scale_group(**arguments)
    assert says in refusal.value.message


def test_a_group_without_index_start_creates_from_one():
    assert scale_group("web-{index}", 1, None).index_start == 1


def test_a_hostname_longer_than_a_dns_label_is_no_member_whatever_its_digits():
    pattern = parse_pattern("web-{index}")
    assert pattern.index_of("web-" + "1" * 5000) is None
    assert pattern.index_of("web-" + "1" * 59) is not None


# A member being stopped to scale down that ends 'failed' instead: it no longer counts, as its stop intended.


def release_run(api, count, pattern="fail-{index}", **settings):
    time = FakeTime()
    resolver = GroupResolver(scale_group(pattern, count))
    executor = FleetExecutor(api, FleetSettings(**settings), sleep=time.sleep, clock=time.clock)
    return executor.converge_derived(resolver, resolver.release), resolver


def test_a_member_being_stopped_that_ends_failed_while_provisioning_does_not_fail_the_scale_down():
    api = FakeAPI([fake_record("fail-1"), fake_record("fail-2"), fake_record("fail-3", "provisioning")])
    outcome, resolver = release_run(api, 2)
    assert outcome.failures == {} and list(outcome.released_map) == ["fail-3"]
    assert "ended in state 'failed' while provisioning" in outcome.released_map["fail-3"]
    assert resolver.left_failed == ["fail-3"]
    group = resolver.view(outcome.records)
    assert group["active"] == ["fail-1", "fail-2"] and group["failed"] == ["fail-3"]


def test_a_stop_refused_because_provisioning_failed_is_read_again_and_released():
    refusal = HzelError("The hzel API refused POST ...: Container failed to provision and cannot change state", 400)
    api = FakeAPI(
        [fake_record("fail-1"), fake_record("fail-2", "provisioning")], provisioning_polls=1, fail={"fail-2": refusal}
    )
    outcome, resolver = release_run(api, 1, wait=False)
    assert outcome.failures == {} and list(outcome.released_map) == ["fail-2"]
    assert [call[0] for call in api.calls] == ["list", "stop", "get"]
    assert resolver.view(outcome.records)["failed"] == ["fail-2"]


def test_a_stop_that_fails_on_a_member_that_did_not_end_failed_still_fails_the_task():
    api = FakeAPI([fake_record("web-1"), fake_record("web-2")], fail={"web-2": refused()})
    with pytest.raises(FleetFailed) as failure:
        release_run(api, 1, pattern="web-{index}")
    assert list(failure.value.outcome.failure_map) == ["web-2"] and failure.value.outcome.released == {}


# Without a spec, new members take the spec that the members kept running or started share.


def spec_record(hostname, state="running", number=0, **spec):
    return dict(record(hostname, state, number), **spec)


def test_without_a_spec_new_members_take_the_spec_the_members_share():
    current = [spec_record("web-1", disk_gb=20), spec_record("web-2", "stopped", 1, disk_gb=20)]
    result = plan(current, 3, spec={})
    assert result.items[-1] == {
        "hostname": "web-3",
        "state": "running",
        "cpu_cores": 2,
        "memory_mb": 1024,
        "disk_gb": 20,
    }
    # Members that stay or start carry only the spec given: they are not compared with what was inherited.
    assert result.items[0] == {"hostname": "web-1", "state": "running"}


def test_a_field_given_wins_and_the_others_are_inherited():
    result = plan([spec_record("web-1")], 2, spec={"memory_mb": 2048})
    # disk_gb 18 is the API's default: it is left to the API, as a hand-written item would leave it.
    assert result.items[-1] == {"hostname": "web-2", "state": "running", "cpu_cores": 2, "memory_mb": 2048}


def test_members_that_differ_refuse_new_members_without_a_spec_naming_the_options_to_give():
    current = [
        spec_record("web-1", cpu_cores=1),
        spec_record("web-2", number=1, cpu_cores=4, memory_mb=4096),
        spec_record("web-3", "failed", 2, cpu_cores=8),
    ]
    with pytest.raises(PlanRefused) as refusal:
        plan(current, 3, spec={})
    assert sorted(refusal.value.problems) == ["cpu_cores", "memory_mb"]
    message = refusal.value.message
    assert "give cpu_cores and memory_mb" in message and "Nothing was changed" in message
    assert "(cpu_cores: 1 (web-1), 4 (web-2); memory_mb: 1024 (web-1), 4096 (web-2)); give" in message
    assert "web-3" not in message and refusal.value.problems["memory_mb"].endswith("; give memory_mb")
    # A field given is not asked for; one the members share is not either.
    with pytest.raises(PlanRefused) as refusal:
        plan(current, 3, spec={"cpu_cores": 2})
    assert sorted(refusal.value.problems) == ["memory_mb"]


def test_members_that_differ_do_not_refuse_a_count_that_creates_nothing():
    current = [spec_record("web-1", cpu_cores=1), spec_record("web-2", number=1, cpu_cores=4)]
    assert states(plan(current, 1, spec={})) == [("web-1", "running"), ("web-2", "stopped")]
    assert states(plan(current, 2, spec={})) == [("web-1", "running"), ("web-2", "running")]


def test_an_empty_group_or_one_of_failed_members_creates_at_the_api_defaults():
    assert plan([], 1, spec={}).items == [{"hostname": "web-1", "state": "running"}]
    failed = [spec_record("web-1", "failed", cpu_cores=8)]
    assert plan(failed, 1, spec={}).items == [{"hostname": "web-2", "state": "running"}]


def test_a_refused_spec_sends_nothing_and_the_group_is_still_reported():
    api = FakeAPI([fake_record("web-1", cpu_cores=1), fake_record("web-2", cpu_cores=2)])
    resolver = GroupResolver(scale_group("web-{index}", 3))
    with pytest.raises(PlanRefused):
        FleetExecutor(api, FleetSettings()).converge_derived(resolver)
    assert api.calls == [("list",)]
    assert resolver.view()["active"] == ["web-1", "web-2"]


def test_describe_group_names_the_members_by_state_sorted_by_index_and_counts_the_active_ones():
    current = [
        record("web-10", number=1),
        record("web-2", "provisioning", number=2),
        record("web-3", "stopped", number=3),
        record("web-1", "failed", number=4),
        record("web-01", number=5),
        record("db-1", number=6),
    ]
    group = describe_group(parse_pattern("web-{index}"), current)
    assert group == {
        "hostname_pattern": "web-{index}",
        "members": ["web-1", "web-2", "web-3", "web-10"],
        "active": ["web-2", "web-10"],
        "stopped": ["web-3"],
        "failed": ["web-1"],
        "count": 2,
    }


def test_describe_group_counts_what_the_count_would_keep():
    current = [record("web-1"), record("web-2", "stopped", 1), record("web-3", "failed", 2), record("web-4", number=3)]
    group = describe_group(parse_pattern("web-{index}"), current)
    # A count equal to the group's count changes nothing: every active member is kept, none started or created.
    assert states(plan(current, group["count"])) == [("web-1", "running"), ("web-4", "running")]
    assert group["count"] == 2 and group["members"] == [member["hostname"] for member in plan(current, 0).members]
