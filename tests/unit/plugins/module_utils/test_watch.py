# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watcher of the event source, fed snapshots and readings by hand, with a clock the test moves."""

from __future__ import annotations

import pytest

from ansible_collections.hzel.cloud.plugins.module_utils._options import InvalidParameters
from ansible_collections.hzel.cloud.plugins.module_utils._watch import (
    Snapshot,
    WatchConfig,
    Watcher,
    parse_groups,
)

ALL_EVENTS = (
    "created",
    "state_changed",
    "failed",
    "vanished",
    "threshold_exceeded",
    "threshold_cleared",
    "observed",
    "group_metrics",
)


def uuid(number):
    return "01942cf7-0000-7000-8000-%012d" % number


def record(number, hostname=None, state="running"):
    return {"id": uuid(number), "hostname": hostname or "web-%d" % number, "state": state}


def reading(cpu=1.0, memory=10.0, disk=5.0):
    return {"cpu_percent": cpu, "memory_percent": memory, "disk_percent": disk}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Fleet:
    """A watcher over a list of records; ``poll`` runs one poll with the given readings (id -> reading)."""

    def __init__(self, groups, records, events=ALL_EVENTS, **config):
        self.clock = Clock()
        settings = dict(
            states=("provisioning", "running", "stopped", "failed"),
            events=events,
            startup_events="failed",
            thresholds={},
            threshold_margin=5.0,
            interval=30.0,
            metrics_interval=30.0,
            groups=parse_groups(groups),
        )
        settings.update(config)
        self.watcher = Watcher(WatchConfig(**settings), clock=self.clock)
        self.records = records
        self.read = []

    def poll(self, readings=None, advance=30.0, default=None):
        """The group events of one poll, ``advance`` seconds after the previous one."""
        self.clock.now += advance
        snapshot = Snapshot({item["id"]: dict(item) for item in self.records}, {}, [], {})
        _changes, to_read = self.watcher.start_poll(snapshot, "2026-12-04T00:00:00.000000Z")
        self.read = [item["hostname"] for item in to_read]
        readings = dict(readings or {})
        given = {
            item["id"]: readings.get(item["hostname"], default if default is not None else reading())
            for item in to_read
        }
        return [event["hzel"] for event in self.watcher.end_poll(given) if event["hzel"]["type"] == "group_metrics"]


# --- membership ------------------------------------------------------------------------------------------------
def test_members_are_the_hostnames_the_pattern_renders_whatever_index_start():
    records = [
        record(1, "web-1"),
        record(2, "web-7", state="stopped"),
        record(3, "web-01"),
        record(4, "web-1x"),
        record(5, "api-1"),
        record(6, "web-0", state="failed"),
        record(7, "web-3", state="provisioning"),
    ]
    fleet = Fleet({"web": {"hostname_pattern": "web-{index}", "index_start": 5}}, records)
    (event,) = fleet.poll()
    assert event["group"] == "web" and event["hostname_pattern"] == "web-{index}"
    assert event["members"] == {"total": 4, "running": 1, "counted": 1, "warming": 0, "failed": 1}
    # Only running members are read, and only members.
    assert fleet.read == ["web-1"]


def test_zero_padded_patterns_take_only_their_own_renderings():
    records = [record(1, "db-01"), record(2, "db-1"), record(3, "db-100")]
    fleet = Fleet({"db": {"hostname_pattern": "db-{index:02d}"}}, records)
    (event,) = fleet.poll()
    assert event["members"]["total"] == 2 and sorted(fleet.read) == ["db-01", "db-100"]


def test_mean_and_max_are_over_the_counted_members_and_events_have_no_meta():
    records = [record(1), record(2), record(3)]
    fleet = Fleet({"web": {"hostname_pattern": "web-{index}"}}, records)
    fleet.clock.now = 0.0
    snapshot = Snapshot({item["id"]: dict(item) for item in records}, {}, [], {})
    fleet.watcher.start_poll(snapshot, "t")
    events = fleet.watcher.end_poll(
        {uuid(1): reading(cpu=10, memory=20), uuid(2): reading(cpu=40, memory=60), uuid(3): "HTTP 500"}
    )
    (event,) = events
    assert "meta" not in event
    hzel = event["hzel"]
    assert hzel["members"]["counted"] == 2 and hzel["members"]["running"] == 3
    assert hzel["mean"] == {"cpu_percent": 25.0, "memory_percent": 40.0, "disk_percent": 5.0}
    assert hzel["max"] == {"cpu_percent": 40, "memory_percent": 60, "disk_percent": 5.0}


def test_a_group_without_counted_members_has_null_figures():
    fleet = Fleet({"web": {"hostname_pattern": "web-{index}"}}, [record(1, state="stopped")])
    (event,) = fleet.poll()
    assert event["members"]["counted"] == 0
    assert event["mean"] is None and event["max"] is None
    assert event["window"] == {"min": None, "max": None}


def test_without_group_metrics_in_events_no_group_member_is_read():
    fleet = Fleet({"web": {"hostname_pattern": "web-{index}"}}, [record(1)], events=("created",))
    assert fleet.poll() == [] and fleet.read == []


# --- warmup --------------------------------------------------------------------------------------------------
def test_members_running_at_start_count_at_once_and_new_ones_warm_up_first():
    records = [record(1), record(2, state="provisioning")]
    fleet = Fleet({"web": {"hostname_pattern": "web-{index}", "warmup": 60}}, records)
    (event,) = fleet.poll()
    assert (event["members"]["counted"], event["members"]["warming"]) == (1, 0)
    records[1]["state"] = "running"
    records.append(record(3))
    (event,) = fleet.poll(advance=30)
    assert (event["members"]["running"], event["members"]["counted"], event["members"]["warming"]) == (3, 1, 2)
    (event,) = fleet.poll(advance=59)
    assert (event["members"]["counted"], event["members"]["warming"]) == (1, 2)
    (event,) = fleet.poll(advance=1)
    assert (event["members"]["counted"], event["members"]["warming"]) == (3, 0)


def test_a_member_that_stops_and_runs_again_warms_up_again():
    records = [record(1)]
    fleet = Fleet({"web": {"hostname_pattern": "web-{index}", "warmup": 60}}, records)
    assert fleet.poll()[0]["members"]["counted"] == 1
    records[0]["state"] = "stopped"
    assert fleet.poll()[0]["members"]["running"] == 0
    records[0]["state"] = "running"
    assert fleet.poll()[0]["members"]["warming"] == 1
    assert fleet.poll(advance=60)[0]["members"]["counted"] == 1


def test_a_warmup_of_zero_counts_new_members_at_once():
    records = [record(1)]
    fleet = Fleet({"web": {"hostname_pattern": "web-{index}", "warmup": 0}}, records)
    fleet.poll()
    records.append(record(2))
    assert fleet.poll()[0]["members"]["counted"] == 2


# --- window ----------------------------------------------------------------------------------------------------
def test_the_window_is_null_until_full_then_the_lowest_and_highest_mean_of_its_span():
    fleet = Fleet({"web": {"hostname_pattern": "web-{index}", "window": 60}}, [record(1)])
    first = fleet.poll({"web-1": reading(cpu=50)})[0]
    assert first["window"] == {"min": None, "max": None}
    second = fleet.poll({"web-1": reading(cpu=10)})[0]
    assert second["window"] == {"min": None, "max": None}
    third = fleet.poll({"web-1": reading(cpu=30)})[0]
    assert third["window"]["min"]["cpu_percent"] == 10 and third["window"]["max"]["cpu_percent"] == 50
    # 60 s later the 50 has left the window.
    fourth = fleet.poll({"web-1": reading(cpu=20)})[0]
    assert fourth["window"]["min"]["cpu_percent"] == 10 and fourth["window"]["max"]["cpu_percent"] == 30
    assert set(fourth["window"]["min"]) == {"cpu_percent", "memory_percent", "disk_percent"}


# --- autoscale -------------------------------------------------------------------------------------------------
def autoscaled(**policy):
    return {"web": {"hostname_pattern": "web-{index}", "autoscale": policy}}


def test_up_when_the_group_mean_is_above_high_and_the_decision_carries_its_settings():
    fleet = Fleet(autoscaled(high=70), [record(1), record(2)])
    (event,) = fleet.poll({"web-1": reading(cpu=90), "web-2": reading(cpu=60)})
    decision = event["autoscale"]
    assert decision["direction"] == "up" and "75" in decision["reason"] and "70" in decision["reason"]
    assert {key: decision[key] for key in ("metric", "high", "low", "cooldown", "stabilization")} == {
        "metric": "cpu_percent",
        "high": 70.0,
        "low": 20.0,
        "cooldown": 300.0,
        "stabilization": 300.0,
    }


def test_no_decision_without_counted_members():
    records = [record(1, state="stopped")]
    fleet = Fleet(autoscaled(high=50, low=10, stabilization=0, cooldown=0), records)
    decision = fleet.poll()[0]["autoscale"]
    assert decision["direction"] is None and decision["reason"] == "no member is counted"
    records.append(record(2))
    decision = fleet.poll(default=reading(cpu=99))[0]["autoscale"]
    assert decision["direction"] is None, "a member that has just started is warming, not counted"


def test_down_only_once_the_stabilization_window_is_full_and_below_low():
    fleet = Fleet(autoscaled(low=20, stabilization=60, cooldown=0), [record(1)])
    decisions = [fleet.poll({"web-1": reading(cpu=cpu)})[0]["autoscale"] for cpu in (5, 5, 5, 25, 5, 5, 5)]
    assert [decision["direction"] for decision in decisions] == [None, None, "down", None, None, None, "down"]
    assert "not full" in decisions[0]["reason"]


def test_down_needs_every_mean_of_the_stabilization_window_below_low():
    fleet = Fleet(autoscaled(metric="memory_percent", low=20, stabilization=30, cooldown=0), [record(1)])
    directions = [
        fleet.poll({"web-1": reading(cpu=1, memory=memory)})[0]["autoscale"]["direction"] for memory in (10, 30, 10, 10)
    ]
    assert directions == [None, None, None, "down"]


def test_at_most_one_decision_per_cooldown_under_an_oscillating_load():
    fleet = Fleet(autoscaled(high=70, low=20, cooldown=300, stabilization=0), [record(1)])
    decided = []
    for poll in range(40):
        cpu = 95 if poll % 2 else 5
        decision = fleet.poll({"web-1": reading(cpu=cpu)}, advance=30)[0]["autoscale"]
        if decision["direction"] is not None:
            decided.append((poll * 30, decision["direction"]))
        elif poll and decided:
            assert decision["reason"].startswith("cooldown")
    times = [at for at, _direction in decided]
    assert len(decided) >= 3
    assert all(later - earlier >= 300 for earlier, later in zip(times, times[1:]))


def test_a_change_in_the_active_count_starts_a_cooldown():
    records = [record(1), record(2)]
    fleet = Fleet(autoscaled(high=70, cooldown=120, stabilization=0), records)
    fleet.poll({"web-1": reading(cpu=10), "web-2": reading(cpu=10)})
    records.append(record(3, state="provisioning"))  # a scale-up arrives
    decision = fleet.poll({"web-1": reading(cpu=90), "web-2": reading(cpu=90)})[0]["autoscale"]
    assert decision["direction"] is None and "active members" in decision["reason"]
    decision = fleet.poll({"web-1": reading(cpu=90), "web-2": reading(cpu=90)}, advance=119)[0]["autoscale"]
    assert decision["direction"] is None
    decision = fleet.poll({"web-1": reading(cpu=90), "web-2": reading(cpu=90)}, advance=1)[0]["autoscale"]
    assert decision["direction"] == "up"


def test_groups_without_autoscale_carry_no_autoscale_key():
    fleet = Fleet({"web": {"hostname_pattern": "web-{index}"}}, [record(1)])
    assert "autoscale" not in fleet.poll()[0]


# --- arguments ---------------------------------------------------------------------------------------------------
def test_defaults_and_numbers_given_as_text():
    (group,) = parse_groups(
        {"web": {"hostname_pattern": "web-{index}", "window": "120", "autoscale": {"high": "80", "cooldown": "60"}}}
    )
    assert (group.index_start, group.window, group.warmup) == (1, 120.0, 60.0)
    assert group.autoscale is not None
    assert (group.autoscale.metric, group.autoscale.high, group.autoscale.low) == ("cpu_percent", 80.0, 20.0)
    assert (group.autoscale.cooldown, group.autoscale.stabilization) == (60.0, 300.0)
    assert parse_groups(None) == () and parse_groups({}) == ()


@pytest.mark.parametrize(
    "groups, message",
    [
        ("web", "groups must be a mapping"),
        ({"Web": {"hostname_pattern": "web-{index}"}}, "a group name must be lowercase"),
        ({"web-": {"hostname_pattern": "web-{index}"}}, "got 'web-'"),
        ({"web": {}}, "groups.web needs hostname_pattern"),
        ({"web": {"hostname_pattern": "web"}}, "groups.web.hostname_pattern must hold exactly one placeholder"),
        ({"web": {"hostname_pattern": "web-{index}", "windw": 5}}, "'windw' (did you mean 'window'?)"),
        ({"web": {"hostname_pattern": "web-{index}", "window": 0}}, "groups.web.window must be at least 1"),
        ({"web": {"hostname_pattern": "web-{index}", "window": "soon"}}, "groups.web.window must be a number"),
        ({"web": {"hostname_pattern": "web-{index}", "warmup": -1}}, "groups.web.warmup must be at least 0"),
        ({"web": {"hostname_pattern": "web-{index}", "index_start": 1.5}}, "groups.web.index_start must be a whole"),
        ({"web": {"hostname_pattern": "web-{index}", "window": 10**400}}, "got a number of 401 digits"),
        ({"web": {"hostname_pattern": "web-{index}", "autoscale": "yes"}}, "groups.web.autoscale must be a mapping"),
        (
            {"web": {"hostname_pattern": "web-{index}", "autoscale": {"metric": "disk_percent"}}},
            "groups.web.autoscale.metric must be one of cpu_percent, memory_percent",
        ),
        (
            {"web": {"hostname_pattern": "web-{index}", "autoscale": {"cooldwn": 1}}},
            "'cooldwn' (did you mean 'cooldown'?)",
        ),
        (
            {"web": {"hostname_pattern": "web-{index}", "autoscale": {"low": 50, "high": 40}}},
            "groups.web.autoscale.low must be below groups.web.autoscale.high",
        ),
        (
            {"web": {"hostname_pattern": "web-{index}", "autoscale": {"high": 0}}},
            "groups.web.autoscale.high must be greater than 0",
        ),
        (
            {"web": {"hostname_pattern": "web-{index}", "autoscale": {"cooldown": 90000}}},
            "groups.web.autoscale.cooldown must be at least 0 and at most 86400",
        ),
    ],
)
def test_bad_groups_give_one_message_naming_the_key(groups, message):
    with pytest.raises(InvalidParameters) as failure:
        parse_groups(groups)
    assert message in str(failure.value)
    assert len(str(failure.value)) < 300
