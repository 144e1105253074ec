# What the hzel_events source makes of its polls: snapshot diffs, thresholds, metrics turns and group metrics.
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""The watching logic of the hzel_events event source, free of asyncio and of ansible-rulebook.

A ``Watcher`` takes one poll's checked container records (a ``Snapshot``), says which containers' metrics to read,
then takes the readings and returns the events, in order. The source only reads the API and puts events on a queue.
"""

from __future__ import annotations

import bisect
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Set, Tuple

from ansible_collections.hzel.cloud.plugins.module_utils._options import InvalidParameters, check_number, unknown_keys
from ansible_collections.hzel.cloud.plugins.module_utils._scale import (
    ACTIVE_STATES,
    INDEX_MAX,
    INDEX_START_DEFAULT,
    HostnamePattern,
    parse_pattern,
)
from ansible_collections.hzel.cloud.plugins.module_utils._transport import plain_number

Record = Dict[str, Any]
Event = Dict[str, Any]

METRICS = ("cpu_percent", "memory_percent", "disk_percent")
AUTOSCALE_METRICS = ("cpu_percent", "memory_percent")
GROUPS_MAX = 100
GROUP_NAME_RE = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")


class Bounds(NamedTuple):
    default: Any
    low: float
    high: float
    integer: bool = False
    low_inclusive: bool = True


GROUP_KEYS: Dict[str, Optional[Bounds]] = {
    "hostname_pattern": None,
    "index_start": Bounds(INDEX_START_DEFAULT, 0, INDEX_MAX, integer=True),
    "window": Bounds(300.0, 1, 86400),
    "warmup": Bounds(60.0, 0, 86400),
    "autoscale": None,
}
AUTOSCALE_KEYS: Dict[str, Optional[Bounds]] = {
    "metric": None,
    "high": Bounds(70.0, 0, 100, low_inclusive=False),
    "low": Bounds(20.0, 0, 100),
    "cooldown": Bounds(300.0, 0, 86400),
    "stabilization": Bounds(300.0, 0, 86400),
}
AUTOSCALE_METRIC_DEFAULT = "cpu_percent"


# --- arguments ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Autoscale:
    metric: str
    high: float
    low: float
    cooldown: float
    stabilization: float


@dataclass(frozen=True)
class Group:
    name: str
    pattern: HostnamePattern
    index_start: int
    window: float
    warmup: float
    autoscale: Optional[Autoscale] = None


def _number(name: str, value: Any, bounds: Bounds) -> Any:
    """A number within its bounds; numbers written as text (rulebook variables arrive so) are taken as such."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if bounds.integer or text.isdigit() else float(text)
        except ValueError:
            raise InvalidParameters("%s must be a number, got %r" % (name, value[:80])) from None
    try:
        value = check_number(name, value, bounds.low, bounds.high, bounds.integer, bounds.low_inclusive)
    except OverflowError:  # an integer too large for a float: out of every bound
        raise InvalidParameters(
            "%s must be at most %s, got a number of %d digits" % (name, plain_number(bounds.high), len(str(abs(value))))
        ) from None
    return value if bounds.integer else float(value)


def _mapping(name: str, value: Any, keys: Mapping[str, Any]) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParameters(
            "%s must be a mapping, got %r" % (name, value if not isinstance(value, str) else "a string")
        )
    unknown = unknown_keys(value, keys)
    if unknown:
        raise InvalidParameters(
            "%s: unknown key%s %s; the keys are %s"
            % (name, "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(keys))
        )
    return value


def parse_autoscale(name: str, value: Any) -> Autoscale:
    given = _mapping(name, {} if value is None else value, AUTOSCALE_KEYS)
    metric = given.get("metric")
    if metric is None:
        metric = AUTOSCALE_METRIC_DEFAULT
    if metric not in AUTOSCALE_METRICS:
        raise InvalidParameters(
            "%s.metric must be one of %s, got %r" % (name, ", ".join(AUTOSCALE_METRICS), str(metric)[:80])
        )
    numbers = {}
    for key, bounds in AUTOSCALE_KEYS.items():
        if bounds is None:
            continue
        numbers[key] = bounds.default if given.get(key) is None else _number("%s.%s" % (name, key), given[key], bounds)
    if numbers["low"] >= numbers["high"]:
        raise InvalidParameters(
            "%s.low must be below %s.high (got low %s, high %s)" % (name, name, numbers["low"], numbers["high"])
        )
    return Autoscale(metric, numbers["high"], numbers["low"], numbers["cooldown"], numbers["stabilization"])


def parse_groups(value: Any) -> Tuple[Group, ...]:
    """The ``groups`` argument, every key checked; each problem is one InvalidParameters naming the key."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise InvalidParameters("groups must be a mapping of group names to groups, got %r" % type(value).__name__)
    if len(value) > GROUPS_MAX:
        raise InvalidParameters("groups must hold at most %d groups, got %d" % (GROUPS_MAX, len(value)))
    groups = []
    for name in sorted(value, key=str):
        if not isinstance(name, str) or not GROUP_NAME_RE.fullmatch(name):
            raise InvalidParameters(
                "groups: a group name must be lowercase letters, digits and hyphens, start with a letter, not end "
                "with a hyphen and be at most 63 characters, got %r" % (str(name)[:80],)
            )
        prefix = "groups.%s" % name
        given = _mapping(prefix, value[name], GROUP_KEYS)
        if given.get("hostname_pattern") is None:
            raise InvalidParameters("%s needs hostname_pattern (for example web-{index})" % prefix)
        try:
            pattern = parse_pattern(given["hostname_pattern"])
        except InvalidParameters as exc:
            raise InvalidParameters("%s.%s" % (prefix, exc.message)) from None
        numbers = {}
        for key, bounds in GROUP_KEYS.items():
            if bounds is None:
                continue
            numbers[key] = (
                bounds.default if given.get(key) is None else _number("%s.%s" % (prefix, key), given[key], bounds)
            )
        autoscale = None
        if "autoscale" in given:
            autoscale = parse_autoscale(prefix + ".autoscale", given["autoscale"])
        groups.append(
            Group(
                name=name,
                pattern=pattern,
                index_start=numbers["index_start"],
                window=float(numbers["window"]),
                warmup=float(numbers["warmup"]),
                autoscale=autoscale,
            )
        )
    return tuple(groups)


# --- the watcher --------------------------------------------------------------------------------------------
class Snapshot(NamedTuple):
    records: Dict[str, Record]
    hostname_counts: Dict[str, int]
    skipped: List[str]
    # Listed containers whose record failed the checks: id -> why; their last good record stands in.
    kept: Dict[str, str]


@dataclass(frozen=True)
class WatchConfig:
    states: Tuple[str, ...]
    events: Tuple[str, ...]
    startup_events: str
    thresholds: Mapping[str, float]
    threshold_margin: float
    interval: float
    metrics_interval: float
    groups: Tuple[Group, ...] = ()


def _ordered(records: Any) -> List[Record]:
    return sorted(records, key=lambda record: (record["hostname"], record["id"]))


def _span(history: List[Tuple[float, Any]], seconds: float, now: float) -> Optional[List[Any]]:
    """The values of the last ``seconds`` seconds, or None while the history does not span them yet."""
    start = now - seconds
    if not history or history[0][0] > start:
        return None
    return [value for at, value in history if at >= start]


class GroupState:
    """What the watcher remembers of one group between polls."""

    def __init__(self, group: Group) -> None:
        self.group = group
        # (time, group means) of the polls that had counted members, oldest first.
        self.history: List[Tuple[float, Dict[str, float]]] = []
        self.active: Optional[int] = None
        self.active_changed_at: Optional[float] = None
        self.decided_at: Optional[float] = None

    def remember(self, now: float, means: Dict[str, float]) -> None:
        self.history.append((now, means))
        keep = max(self.group.window, self.group.autoscale.stabilization if self.group.autoscale else 0.0)
        # Drop what is older than needed, but keep the newest mean at or before the oldest start, which shows that
        # the history spans the whole window.
        while len(self.history) > 1 and self.history[1][0] <= now - keep:
            self.history.pop(0)


class Watcher:
    """The events of a sequence of polls, from their snapshots and metrics readings.

    Per poll: ``start_poll`` (the container events, and the containers whose metrics to read), then ``end_poll``
    with the readings (the threshold and group events). ``clock`` gives seconds on a monotonic scale; it is read
    once per poll.
    """

    def __init__(self, config: WatchConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.known: Optional[Dict[str, Record]] = None
        self.exceeded: Dict[str, Set[str]] = {}
        # The (hostname, id) of the last container whose metrics were read: the next poll goes on after it.
        self.metrics_last: Optional[Tuple[str, str]] = None
        # The readings owed but not yet made (a fraction of one), carried to the next poll.
        self.metrics_due = 0.0
        self.metrics_enabled = bool(config.thresholds) and (
            "running" in config.states and bool({"threshold_exceeded", "threshold_cleared"} & set(config.events))
        )
        self.groups_enabled = bool(config.groups) and "group_metrics" in config.events
        self.groups = [GroupState(group) for group in config.groups]
        # Containers seen becoming running: id -> when; forgotten once warmed up or no longer running.
        self.running_since: Dict[str, float] = {}
        # The current poll.
        self.snapshot: Optional[Snapshot] = None
        self.observed_at = ""
        self.now = 0.0
        self.turn: List[Record] = []

    # events ----------------------------------------------------------------------------------------------------
    def event(self, kind: str, observed_at: str, hostname: Optional[str] = None, **fields: Any) -> Event:
        payload: Dict[str, Any] = {"type": kind, "observed_at": observed_at}
        payload.update(fields)
        event: Event = {"hzel": payload}
        if hostname is not None:
            event["meta"] = {"hosts": hostname}
        return event

    def container_event(
        self,
        kind: str,
        observed_at: str,
        record: Record,
        previous_state: Optional[str],
        startup: bool,
        snapshot: Snapshot,
        **fields: Any,
    ) -> Optional[Event]:
        if kind not in self.config.events or record["state"] not in self.config.states:
            return None
        hostname = record["hostname"]
        # Limiting a play to a hostname that two containers share would act on both.
        limit = hostname if snapshot.hostname_counts.get(hostname, 0) == (0 if kind == "vanished" else 1) else None
        return self.event(
            kind,
            observed_at,
            limit,
            container=dict(record),
            previous_state=previous_state,
            startup=startup,
            **fields,
        )

    # a poll ------------------------------------------------------------------------------------------------------
    def start_poll(self, snapshot: Snapshot, observed_at: str) -> Tuple[List[Event], List[Record]]:
        """The container events of a poll, and the containers whose metrics it reads (sorted)."""
        self.snapshot, self.observed_at, self.now = snapshot, observed_at, self.clock()
        startup = self.known is None
        events = self.container_events(snapshot, observed_at, startup)
        self.track_running(snapshot, startup)
        running = _ordered(record for record in snapshot.records.values() if record["state"] == "running")
        self.turn = self.metrics_turn(running) if self.metrics_enabled else []
        wanted = {record["id"] for record in self.turn}
        if self.groups_enabled:
            for record in running:
                if any(state.group.pattern.index_of(record["hostname"]) is not None for state in self.groups):
                    wanted.add(record["id"])
        return events, [record for record in running if record["id"] in wanted]

    def end_poll(self, readings: Mapping[str, Any]) -> List[Event]:
        """The threshold and group events of the poll, from its readings: id -> percentages, or a reason (str)."""
        snapshot = self.snapshot
        if snapshot is None:
            raise RuntimeError("end_poll without start_poll")
        startup = self.known is None
        events: List[Event] = []
        if self.metrics_enabled:
            events.extend(self.threshold_events(snapshot, self.turn, readings, self.observed_at, startup))
        if self.groups_enabled:
            events.extend(self.group_events(snapshot, readings))
        self.known = snapshot.records
        self.snapshot = None
        return events

    # snapshot diffs ----------------------------------------------------------------------------------------------
    def container_events(self, snapshot: Snapshot, observed_at: str, startup: bool) -> List[Event]:
        found: List[Optional[Event]] = []
        known = self.known or {}
        for record in _ordered(snapshot.records.values()):
            if startup:
                if self.config.startup_events == "none":
                    continue
                if record["state"] == "failed":
                    kind: Optional[str] = "failed"
                else:
                    kind = "observed" if self.config.startup_events == "all" else None
                previous = None
            elif record["id"] not in known:
                kind = "failed" if record["state"] == "failed" else "created"
                previous = None
            else:
                previous = known[record["id"]]["state"]
                if previous == record["state"]:
                    continue
                kind = "failed" if record["state"] == "failed" else "state_changed"
            if kind:
                found.append(self.container_event(kind, observed_at, record, previous, startup, snapshot))
        gone = _ordered(record for container_id, record in known.items() if container_id not in snapshot.records)
        for record in gone:
            found.append(self.container_event("vanished", observed_at, record, record["state"], False, snapshot))
        for container_id in list(self.exceeded):
            current = snapshot.records.get(container_id)
            if current is None or current["state"] != "running":
                # Stopped or gone: its readings start afresh when it runs again.
                del self.exceeded[container_id]
        return [event for event in found if event is not None]

    def track_running(self, snapshot: Snapshot, startup: bool) -> None:
        """Note when the source saw each container become running (those running at start are not noted)."""
        known = self.known or {}
        for container_id, record in snapshot.records.items():
            if record["state"] != "running":
                self.running_since.pop(container_id, None)
            elif not startup and (container_id not in known or known[container_id]["state"] != "running"):
                self.running_since[container_id] = self.now
        for container_id in list(self.running_since):
            if container_id not in snapshot.records:
                del self.running_since[container_id]

    # thresholds --------------------------------------------------------------------------------------------------
    def metrics_turn(self, running: List[Record]) -> List[Record]:
        """The running containers (sorted) whose metrics this poll reads: all of them when metrics_interval is the
        poll interval; else N * interval / metrics_interval of them on average (the fraction carried from poll to
        poll), the next after the last one read, in turn, so that each is read about once per metrics_interval,
        the readings spread over the polls, and the cost is N / metrics_interval requests per second."""
        if not running:
            return []
        share = self.config.interval / self.config.metrics_interval
        due = self.metrics_due + len(running) * share
        count = min(len(running), int(due + 1e-9))
        self.metrics_due = min(float(len(running)), due - count)
        if count == len(running):
            self.metrics_last = None
            return running
        if count == 0:
            return []
        keys = [(record["hostname"], record["id"]) for record in running]
        start = bisect.bisect_right(keys, self.metrics_last) if self.metrics_last else 0
        chosen = [running[(start + offset) % len(running)] for offset in range(count)]
        self.metrics_last = keys[(start + count - 1) % len(running)]
        return _ordered(chosen)

    def threshold_events(
        self,
        snapshot: Snapshot,
        turn: List[Record],
        readings: Mapping[str, Any],
        observed_at: str,
        startup: bool,
    ) -> List[Event]:
        found: List[Event] = []
        previous_states = {container_id: known["state"] for container_id, known in (self.known or {}).items()}
        for record in turn:
            reading = readings.get(record["id"])
            if not isinstance(reading, dict):
                continue
            exceeded = self.exceeded.setdefault(record["id"], set())
            for metric in METRICS:
                threshold = self.config.thresholds.get(metric)
                if threshold is None:
                    continue
                value = reading[metric]
                if metric not in exceeded and value >= threshold:
                    exceeded.add(metric)
                    kind = "threshold_exceeded"
                elif metric in exceeded and value < threshold and value <= threshold - self.config.threshold_margin:
                    exceeded.discard(metric)
                    kind = "threshold_cleared"
                else:
                    continue
                if startup and self.config.startup_events == "none":
                    continue
                emitted = self.container_event(
                    kind,
                    observed_at,
                    record,
                    previous_states.get(record["id"]),
                    startup,
                    snapshot,
                    metric=metric,
                    value=value,
                    threshold=threshold,
                    margin=self.config.threshold_margin,
                    metrics=reading,
                )
                if emitted is not None:
                    found.append(emitted)
            if not exceeded:
                del self.exceeded[record["id"]]
        return found

    # groups ------------------------------------------------------------------------------------------------------
    def group_events(self, snapshot: Snapshot, readings: Mapping[str, Any]) -> List[Event]:
        return [self.group_event(state, snapshot, readings) for state in self.groups]

    def group_event(self, state: GroupState, snapshot: Snapshot, readings: Mapping[str, Any]) -> Event:
        group, now = state.group, self.now
        members = [
            record for record in snapshot.records.values() if group.pattern.index_of(record["hostname"]) is not None
        ]
        running = [record for record in members if record["state"] == "running"]
        warming = [
            record
            for record in running
            if record["id"] in self.running_since and now - self.running_since[record["id"]] < group.warmup
        ]
        warming_ids = {record["id"] for record in warming}
        counted = [
            readings[record["id"]]
            for record in running
            if record["id"] not in warming_ids and isinstance(readings.get(record["id"]), dict)
        ]
        active = sum(1 for record in members if record["state"] in ACTIVE_STATES)
        if state.active is not None and active != state.active:
            state.active_changed_at = now
        state.active = active
        mean: Optional[Dict[str, float]] = None
        peak: Optional[Dict[str, float]] = None
        if counted:
            mean = {metric: round(sum(reading[metric] for reading in counted) / len(counted), 2) for metric in METRICS}
            peak = {metric: max(reading[metric] for reading in counted) for metric in METRICS}
            state.remember(now, mean)
        window = _span(state.history, group.window, now)
        fields: Dict[str, Any] = {
            "group": group.name,
            "hostname_pattern": group.pattern.text,
            "members": {
                "total": len(members),
                "running": len(running),
                "counted": len(counted),
                "warming": len(warming),
                "failed": sum(1 for record in members if record["state"] == "failed"),
            },
            "mean": mean,
            "max": peak,
            "window": {
                "min": {metric: min(means[metric] for means in window) for metric in METRICS} if window else None,
                "max": {metric: max(means[metric] for means in window) for metric in METRICS} if window else None,
            },
        }
        if group.autoscale:
            fields["autoscale"] = self.decide(state, group.autoscale, mean)
        return self.event("group_metrics", self.observed_at, **fields)

    def decide(self, state: GroupState, policy: Autoscale, mean: Optional[Dict[str, float]]) -> Dict[str, Any]:
        """One autoscale decision: up, down or None, with its reason."""
        metric, now = policy.metric, self.now
        direction: Optional[str] = None
        if mean is None:
            reason = "no member is counted"
        elif mean[metric] > policy.high:
            direction = "up"
            reason = "the mean %s %s is above high %s" % (metric, _plain(mean[metric]), _plain(policy.high))
        else:
            stable = _span(state.history, policy.stabilization, now)
            if stable is None:
                reason = "the stabilization window of %s s is not full yet" % _plain(policy.stabilization)
            else:
                highest = max(means[metric] for means in stable)
                if highest < policy.low:
                    direction = "down"
                    reason = "the highest mean %s over the last %s s, %s, is below low %s" % (
                        metric,
                        _plain(policy.stabilization),
                        _plain(highest),
                        _plain(policy.low),
                    )
                else:
                    reason = "the mean %s %s is within low %s and high %s over the last %s s" % (
                        metric,
                        _plain(mean[metric]),
                        _plain(policy.low),
                        _plain(policy.high),
                        _plain(policy.stabilization),
                    )
        if direction is not None:
            since = [at for at in (state.decided_at, state.active_changed_at) if at is not None]
            if since and now - max(since) < policy.cooldown:
                cause = "the last decision" if max(since) == state.decided_at else "the last change of active members"
                reason = "cooldown: %s s left after %s (would scale %s: %s)" % (
                    _plain(math.ceil(policy.cooldown - (now - max(since)))),
                    cause,
                    direction,
                    reason,
                )
                direction = None
            else:
                state.decided_at = now
        return {
            "direction": direction,
            "metric": metric,
            "high": policy.high,
            "low": policy.low,
            "cooldown": policy.cooldown,
            "stabilization": policy.stabilization,
            "reason": reason,
        }


def _plain(value: float) -> str:
    return ("%.2f" % value).rstrip("0").rstrip(".")
