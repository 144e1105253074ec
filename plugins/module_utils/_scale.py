# Scale by count for the hzel modules: a hostname pattern and a count, resolved into fleet items.
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""Scale by count: a hostname pattern and a count, resolved against the visible containers into fleet items.

The pattern group is exactly the containers whose hostname the pattern renders for some index; nothing else is
ever selected. The items this returns go through the ordinary plan (``_plan.make_plan``), so drift, failed
containers and every other refusal apply to them as to items written by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.hzel.cloud.plugins.module_utils._executor import FleetOutcome
from ansible_collections.hzel.cloud.plugins.module_utils._options import (
    DEFAULT_STATE,
    SPEC_DEFAULTS,
    SPEC_FIELDS,
    InvalidParameters,
    check_number,
)
from ansible_collections.hzel.cloud.plugins.module_utils._plan import (
    HOSTNAME_RE,
    DesiredContainer,
    PlanRefused,
    desired_fleet,
)

Record = Dict[str, Any]

COUNT_MAX = 1000
HOSTNAME_MAX = 63
INDEX_MAX = 10**6
INDEX_START_DEFAULT = 1
# How many hostnames a message names for one value of a field that the members do not share.
NAMED_PER_VALUE = 5
# One placeholder: {index}, or {index:0Nd} for zero padding to N digits.
_PLACEHOLDER = re.compile(r"\{index(?::0([1-9])d)?\}")
ACTIVE_STATES = ("running", "provisioning")


class HostnamePattern(NamedTuple):
    text: str
    prefix: str
    suffix: str
    width: int

    def render(self, index: int) -> str:
        return "%s%0*d%s" % (self.prefix, self.width, index, self.suffix)

    def index_of(self, hostname: Any) -> Optional[int]:
        """The index whose rendering is exactly ``hostname``, or None: ``web-01`` is not ``web-{index}``'s."""
        # A hostname longer than a DNS label is no member (and its digits need not be read as a number).
        if (
            not isinstance(hostname, str)
            or len(hostname) > HOSTNAME_MAX
            or not hostname.startswith(self.prefix)
            or not hostname.endswith(self.suffix)
        ):
            return None
        digits = hostname[len(self.prefix) : len(hostname) - len(self.suffix)]
        if not digits.isdigit() or not digits.isascii():
            return None
        index = int(digits)
        return index if self.render(index) == hostname else None


def parse_pattern(pattern: Any) -> HostnamePattern:
    if not isinstance(pattern, str):
        raise InvalidParameters("hostname_pattern must be a string such as web-{index}, got %r" % (pattern,))
    found = list(_PLACEHOLDER.finditer(pattern))
    if len(found) != 1 or pattern.count("{") != 1 or pattern.count("}") != 1:
        raise InvalidParameters(
            "hostname_pattern must hold exactly one placeholder {index} (or {index:02d} for zero padding), "
            "got %r" % pattern[:80]
        )
    match = found[0]
    prefix, suffix = pattern[: match.start()], pattern[match.end() :]
    width = int(match.group(1) or 0)
    parsed = HostnamePattern(pattern, prefix, suffix, width)
    # The prefix must start a DNS label by itself (no pattern that a bare number could satisfy), and every
    # rendering must be a DNS label.
    if (
        not prefix
        or not re.fullmatch(r"[a-z][a-z0-9-]*", prefix)
        or (suffix and not re.fullmatch(r"[a-z0-9-]*", suffix))
    ):
        raise InvalidParameters(
            "hostname_pattern must start with a literal prefix of lowercase letters, digits and hyphens that begins "
            "with a letter (for example web-{index}), got %r" % pattern[:80]
        )
    for sample in (0, INDEX_MAX):
        if not HOSTNAME_RE.fullmatch(parsed.render(sample)):
            raise InvalidParameters(
                "hostname_pattern %r does not render DNS labels (%r for index %d)"
                % (pattern, parsed.render(sample), sample)
            )
    return parsed


class ScalePlan(NamedTuple):
    items: List[Dict[str, Any]]
    members: List[Record]
    failed: List[Record]


def group_members(pattern: HostnamePattern, current: Sequence[Record]) -> List[Tuple[int, Record]]:
    """The members of the pattern's group with their indexes, sorted by index (then id)."""
    members = []
    for record in current:
        index = pattern.index_of(record.get("hostname"))
        if index is not None:
            members.append((index, record))
    members.sort(key=lambda pair: (pair[0], str(pair[1].get("id"))))
    return members


def describe_group(pattern: HostnamePattern, current: Sequence[Record]) -> Dict[str, Any]:
    """The pattern's group as read: the hostnames of its members, sorted by index, by state, and how many count.

    The members are those of ``group_members``, the rule a count converges by, and ``count`` is what that count
    would find: the members that are running or provisioning. Failed members are listed and not counted.
    """
    members = group_members(pattern, current)

    def named(*states: str) -> List[str]:
        return [str(record["hostname"]) for _index, record in members if record.get("state") in states]

    active = named(*ACTIVE_STATES)
    return {
        "hostname_pattern": pattern.text,
        "members": [str(record["hostname"]) for _index, record in members],
        "active": active,
        "stopped": named("stopped"),
        "failed": named("failed"),
        "count": len(active),
    }


def scale_items(group: ScaleGroup, current: Sequence[Record]) -> ScalePlan:
    """The fleet items that bring the pattern group (checked by ``scale_group``) to its count of active members.

    Active members (running or provisioning) count. Scaling up starts stopped members first, lowest index first,
    then creates the lowest free indexes from ``index_start``. Scaling down stops the highest-index active
    members. Failed members are neither counted nor reused, and their names stay taken. Members that stay
    active are items too, with the spec, so that drift refuses the plan as it does for a hand-written fleet.
    New members take the spec given, and for each field not given the value that the members kept running or
    started share (``shared_spec``).
    """
    pattern, count, index_start, spec = group.pattern, group.count, group.index_start, group.spec
    members = group_members(pattern, current)
    by_name: Dict[str, List[Record]] = {}
    for _index, record in members:
        by_name.setdefault(record["hostname"], []).append(record)
    twins = sorted(name for name, held in by_name.items() if len(held) > 1)
    if twins:
        raise InvalidParameters(
            "hostname_pattern %r matches hostnames that more than one visible container holds (%s); a count "
            "cannot tell them apart, so nothing was changed" % (pattern.text, ", ".join(twins[:10]))
        )
    active = [(index, record) for index, record in members if record.get("state") in ACTIVE_STATES]
    stopped = [(index, record) for index, record in members if record.get("state") == "stopped"]
    failed = [record for _index, record in members if record.get("state") == "failed"]

    keep = active[:count]
    to_stop = active[count:]
    missing = count - len(keep)
    to_start = stopped[:missing]
    missing -= len(to_start)
    taken = {index for index, _record in members}
    new_indexes: List[int] = []
    index = index_start
    while len(new_indexes) < missing:
        if index > INDEX_MAX:
            raise InvalidParameters("hostname_pattern has no free index left below %d" % INDEX_MAX)
        if index not in taken:
            new_indexes.append(index)
        index += 1

    items: List[Dict[str, Any]] = []
    for _index, record in keep + to_start:
        items.append(dict(spec, hostname=record["hostname"], state="running"))
    for _index, record in to_stop:
        items.append({"hostname": record["hostname"], "state": "stopped"})
    new_spec = shared_spec(pattern, [record for _index, record in keep + to_start], spec) if new_indexes else spec
    for new in new_indexes:
        items.append(dict(new_spec, hostname=pattern.render(new), state="running"))
    items.sort(key=lambda item: pattern.index_of(item["hostname"]) or 0)
    return ScalePlan(items=items, members=[record for _index, record in members], failed=failed)


def shared_spec(pattern: HostnamePattern, reference: Sequence[Record], spec: Dict[str, int]) -> Dict[str, int]:
    """The spec of new members: ``spec``, and for each field it leaves out, the value every reference member shares.

    The reference members are those the count keeps running or starts (when members are created, every member
    that is not failed). A field on which they differ refuses the plan, before any change, naming the options to
    give; a group without such members leaves the fields to the API's defaults. A shared value that is the API's
    default is left to the API as well, so that the request is the one a hand-written item would send.
    """
    inherited: Dict[str, int] = {}
    # For each field the members do not share: its values, each with the members that have it.
    values: Dict[str, str] = {}
    for name in SPEC_FIELDS:
        if name in spec or not reference:
            continue
        holders: Dict[Any, List[str]] = {}
        for record in reference:
            holders.setdefault(record.get(name), []).append(str(record.get("hostname")))
        if len(holders) == 1:
            value = next(iter(holders))
            if value != SPEC_DEFAULTS[name]:
                inherited[name] = value
            continue
        values[name] = ", ".join(
            "%s (%s%s)"
            % (
                value,
                ", ".join(names[:NAMED_PER_VALUE]),
                " and %d more" % (len(names) - NAMED_PER_VALUE) if len(names) > NAMED_PER_VALUE else "",
            )
            for value, names in sorted(holders.items(), key=lambda pair: str(pair[0]))
        )
    if values:
        raise PlanRefused(
            "hostname_pattern %s: new members take the spec that the existing members share, but they differ in %s "
            "(%s); give %s for the new members. Nothing was changed"
            % (
                pattern.text,
                " and ".join(values),
                "; ".join("%s: %s" % pair for pair in values.items()),
                " and ".join(values),
            ),
            {name: "the members differ: %s; give %s" % (described, name) for name, described in values.items()},
        )
    return dict(inherited, **spec)


@dataclass(frozen=True)
class ScaleGroup:
    """A count group's parameters, every one checked."""

    pattern: HostnamePattern
    count: int
    index_start: int
    spec: Dict[str, int]


def scale_group(
    hostname_pattern: Any,
    count: Any,
    index_start: Any = None,
    spec: Optional[Dict[str, Any]] = None,
    state: Any = DEFAULT_STATE,
) -> ScaleGroup:
    """Check a count group's parameters before any request; each problem is one InvalidParameters."""
    pattern = parse_pattern(hostname_pattern)
    count = check_number("count", count, 0, COUNT_MAX, integer=True, low_inclusive=True)
    if index_start is None:
        index_start = INDEX_START_DEFAULT
    index_start = check_number("index_start", index_start, 0, INDEX_MAX, integer=True, low_inclusive=True)
    if state not in (None, DEFAULT_STATE):
        # The count decides the power state of every member: a group-wide state would contradict it.
        raise InvalidParameters(
            "state does not apply with count: the count decides which members run and which are stopped; leave "
            "state out (got %r)" % (state,)
        )
    spec = {name: value for name, value in (spec or {}).items() if value is not None}
    # The item check of a hand-written fleet (ranges, unknown keys), on the first hostname the group would create.
    desired_fleet([dict(spec, hostname=pattern.render(index_start))], labelled=False)
    return ScaleGroup(pattern, count, index_start, spec)


class GroupResolver:
    """Turns the one list read into the group's desired items (``FleetExecutor.converge_derived``).

    It keeps the resolution, so that the result can show the group as it was found and as it is after the change.
    """

    def __init__(self, group: ScaleGroup) -> None:
        self.group = group
        self.plan: Optional[ScalePlan] = None
        # The members being stopped that ended 'failed' instead (see ``release``).
        self.left_failed: List[str] = []

    def __call__(self, current: Sequence[Record]) -> List[DesiredContainer]:
        try:
            self.plan = scale_items(self.group, current)
        except PlanRefused:
            # A refusal of the new members' spec still reports the group as it was read.
            members = [record for _index, record in group_members(self.group.pattern, current)]
            failed = [record for record in members if record.get("state") == "failed"]
            self.plan = ScalePlan(items=[], members=members, failed=failed)
            raise
        # Unlabelled: a refusal names each item by its hostname, as the user never wrote a list.
        return desired_fleet(self.plan.items, labelled=False)

    def release(self, outcome: FleetOutcome, get: Callable[[str], Record]) -> List[int]:
        """The failed items that were members being stopped to scale down and ended in state 'failed'.

        Such a member is no longer counted, which is what its stop was for, so its failure does not fail the task.
        A failed stop whose record does not show 'failed' (the API refused the stop once provisioning had failed)
        is read again, once, to learn its state; anything else stays a failure.
        """
        released = []
        for index in sorted(outcome.failures):
            step = outcome.steps[index]
            record = outcome.records[index] or step.current
            if step.desired.state != "stopped" or step.current is None or record is None:
                continue
            if record.get("state") != "failed":
                try:
                    record = get(record["id"])
                except Exception:  # a read that fails leaves the failure as it was
                    continue
                if record.get("state") != "failed":
                    continue
                outcome.records[index] = record
            released.append(index)
            self.left_failed.append(str(record.get("hostname")))
        return released

    def failed_before(self) -> List[str]:
        """The members that were already in state 'failed' when the group was read."""
        return [record["hostname"] for record in self.plan.failed] if self.plan else []

    def view(self, records: Sequence[Optional[Record]] = ()) -> Dict[str, Any]:
        """The group after the change: every member, sorted by index, and their hostnames by state.

        ``records`` are the records of the items as they ended (or as predicted in check mode); a member that was
        no item is shown as it was read; a create that failed made no member.
        """
        pattern = self.group.pattern
        members: Dict[str, Record] = {}
        for record in (self.plan.members if self.plan else []) + [record for record in records if record]:
            if pattern.index_of(record.get("hostname")) is not None:
                members[record["hostname"]] = record
        ordered = sorted(members.values(), key=lambda record: pattern.index_of(record["hostname"]) or 0)

        def named(*states: str) -> List[str]:
            return [record["hostname"] for record in ordered if record.get("state") in states]

        return {
            "hostname_pattern": pattern.text,
            "count": self.group.count,
            "members": ordered,
            "active": named(*ACTIVE_STATES),
            "stopped": named("stopped"),
            "failed": named("failed"),
        }
