# The plan of the hzel modules: desired containers checked against the current ones and turned into steps.
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""The plan: desired containers + the current records -> what to do.

Pure code, no HTTP: check mode, diff mode and the executor all read the same
plan, so they cannot disagree. A plan is all or nothing: every problem of every
item is found first (bad parameters, spec drift, a failed container, an unknown
id, an ambiguous hostname) and refused together, before any request changes
anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.hzel.cloud.plugins.module_utils._containers import is_container_id
from ansible_collections.hzel.cloud.plugins.module_utils._options import (
    DEFAULT_STATE,
    DESIRED_STATES,
    DISK_GB_RANGE,
    PARALLELISM_DEFAULT,
    PARALLELISM_MAX,
    SPEC_DEFAULTS,
    SPEC_FIELDS,
    WAIT_TIMEOUT_DEFAULT,
    WAIT_TIMEOUT_MAX,
    InvalidParameters,
    check_number,
    unknown_keys,
)
from ansible_collections.hzel.cloud.plugins.module_utils._transport import HzelError

HOSTNAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
ITEM_KEYS = ("hostname", "id") + SPEC_FIELDS + ("state",)
DIFF_FIELDS = ("hostname", "state") + SPEC_FIELDS
# How many problems a message lists before it counts the rest; every one is in the result.
LISTED_PROBLEMS = 10

Record = Dict[str, Any]


class PlanRefused(HzelError):
    """The fleet cannot be converged as asked; nothing was changed."""

    def __init__(self, message: str, problems: Dict[str, str]) -> None:
        super().__init__(message)
        self.problems = problems
        self.result = {"problems": problems}


@dataclass(frozen=True)
class DesiredContainer:
    """One container as the caller wants it. ``label`` names it in messages."""

    hostname: Optional[str] = None
    id: Optional[str] = None
    cpu_cores: Optional[int] = None
    memory_mb: Optional[int] = None
    disk_gb: Optional[int] = None
    state: str = DEFAULT_STATE
    label: str = ""

    @property
    def spec(self) -> Dict[str, int]:
        return {name: getattr(self, name) for name in SPEC_FIELDS if getattr(self, name) is not None}

    @property
    def name(self) -> str:
        return self.hostname or self.id or "?"

    @property
    def title(self) -> str:
        """How a message names the item: its place in the list and its hostname or id, once."""
        return item_title(self.label, self.hostname, self.id)


@dataclass(frozen=True)
class FleetSettings:
    wait: bool = True
    wait_timeout: float = WAIT_TIMEOUT_DEFAULT
    parallelism: int = PARALLELISM_DEFAULT


@dataclass
class Step:
    """What one desired container needs.

    ``action`` is what the result reports; ``request`` is sent at once,
    ``after_settle`` once provisioning has ended (or at once without wait),
    and ``settle`` says whether to wait for provisioning to end.
    """

    desired: DesiredContainer
    current: Optional[Record]
    action: str
    request: Optional[str] = None
    after_settle: Optional[str] = None
    settle: bool = False
    predicted: Record = field(default_factory=dict)


def is_hostname(value: Any) -> bool:
    return isinstance(value, str) and HOSTNAME_RE.fullmatch(value) is not None


def hostname_problem(value: Any, option: str = "hostname") -> Optional[str]:
    if is_hostname(value):
        return None
    return (
        "%s must be a DNS label: lowercase letters, digits and hyphens, 1 to 63 characters, not starting or "
        "ending with a hyphen (got %r)" % (option, value if not isinstance(value, str) else value[:80])
    )


def item_title(label: str, hostname: Any, container_id: Any) -> str:
    """``containers[2] (web-1)``; only a valid hostname or id is repeated (a bad one is quoted by its problem)."""
    if not label:
        return ""
    if is_hostname(hostname):
        return "%s (%s)" % (label, hostname)
    if is_container_id(container_id):
        return "%s (%s)" % (label, container_id)
    return label


def settings_from(
    wait: Any = True, wait_timeout: Any = WAIT_TIMEOUT_DEFAULT, parallelism: Any = PARALLELISM_DEFAULT
) -> FleetSettings:
    if not isinstance(wait, bool):
        raise InvalidParameters("wait must be true or false, got %r" % (wait,))
    return FleetSettings(
        wait=wait,
        wait_timeout=float(check_number("wait_timeout", wait_timeout, 0, WAIT_TIMEOUT_MAX)),
        parallelism=check_number("parallelism", parallelism, 1, PARALLELISM_MAX, integer=True, low_inclusive=True),
    )


def desired_fleet(items: Any, default_state: str = DEFAULT_STATE, labelled: bool = True) -> List[DesiredContainer]:
    """Check every item and return them as DesiredContainer; all problems are refused together.

    ``labelled`` names each problem's item by its place in the list and its
    hostname or id (``containers[2] (web-1)``), which a fleet of one does not
    need. ``problems`` is keyed by the place in the list alone.
    """
    if default_state not in DESIRED_STATES:
        raise InvalidParameters("state must be one of %s, got %r" % (", ".join(DESIRED_STATES), default_state))
    if not isinstance(items, (list, tuple)):
        raise InvalidParameters("containers must be a list, got %s" % type(items).__name__)
    problems: Dict[str, str] = {}
    titles: Dict[str, str] = {}
    desired = []
    for index, item in enumerate(items):
        label = "containers[%d]" % index if labelled else ""
        try:
            desired.append(_desired_item(item, default_state, label))
        except InvalidParameters as exc:
            problems[label or "parameters"] = exc.message
            if isinstance(item, Mapping):
                titles[label] = item_title(label, item.get("hostname"), item.get("id"))
    titles.update((item.label, item.title) for item in desired)
    for key in ("hostname", "id"):
        seen: Dict[str, str] = {}
        for item in desired:
            value = getattr(item, key)
            if value is None:
                continue
            if value in seen:
                problems[item.label] = "%s %s is already named by %s; each container may appear once" % (
                    key,
                    value,
                    seen[value],
                )
            else:
                seen[value] = item.label
    if problems:
        raise _refusal(problems, "the parameters were refused before any request", titles)
    return desired


def _desired_item(item: Any, default_state: str, label: str) -> DesiredContainer:
    # Problems are stated without the item's name: the refusal names each item once.
    if not isinstance(item, Mapping):
        raise InvalidParameters("must be a dictionary with a hostname or an id, got %s" % type(item).__name__)
    unknown = unknown_keys(item, ITEM_KEYS)
    if unknown:
        raise InvalidParameters("unknown key %s; the keys are %s" % (", ".join(unknown), ", ".join(ITEM_KEYS)))
    problems = []
    hostname, container_id = item.get("hostname"), item.get("id")
    if hostname is None and container_id is None:
        problems.append("one of hostname or id is required")
    if hostname is not None and hostname_problem(hostname):
        problems.append(hostname_problem(hostname) or "")
    if container_id is not None and not is_container_id(container_id):
        problems.append(
            "id must be a container UUID such as 01942cf7-5b1e-7c3a-9d2e-8f1a2b3c4d5e (got %r)"
            % (container_id if not isinstance(container_id, str) else container_id[:80])
        )
    for name in SPEC_FIELDS:
        value = item.get(name)
        if value is None:
            continue
        low, high = DISK_GB_RANGE if name == "disk_gb" else (1, None)
        try:
            check_number(name, value, low, high, integer=True, low_inclusive=True)
        except InvalidParameters:
            if name == "disk_gb":
                problems.append("disk_gb must be between %d and %d (got %r)" % (DISK_GB_RANGE + (value,)))
            else:
                problems.append("%s must be a positive integer (got %r)" % (name, value))
    state = item.get("state")
    if state is None:
        state = default_state
    elif state not in DESIRED_STATES:
        problems.append("state must be one of %s (got %r)" % (", ".join(DESIRED_STATES), state))
    if problems:
        raise InvalidParameters("; ".join(problems))
    return DesiredContainer(
        hostname=hostname,
        id=container_id,
        cpu_cores=item.get("cpu_cores"),
        memory_mb=item.get("memory_mb"),
        disk_gb=item.get("disk_gb"),
        state=state,
        label=label,
    )


def _refusal(problems: Dict[str, str], what: str, titles: Mapping[str, str]) -> PlanRefused:
    """``problems`` keyed by item (``containers[N]``); ``titles`` name those items in the message."""
    if len(problems) == 1:
        key, problem = next(iter(problems.items()))
        # A fleet of one speaks of its container; a fleet names the item's place in the list.
        if key.startswith("containers["):
            message = "%s: %s" % (titles.get(key) or key, problem)
        else:
            message = "C" + problem[1:] if problem.startswith("container ") else problem
        return PlanRefused("%s; nothing was changed" % message.rstrip("."), problems)
    listed = ["%s: %s" % (titles.get(key) or key, problem) for key, problem in list(problems.items())[:LISTED_PROBLEMS]]
    more = len(problems) - LISTED_PROBLEMS
    return PlanRefused(
        "%d items cannot be converged, so nothing was changed (%s): %s%s"
        % (len(problems), what, "; ".join(listed), "; and %d more (see 'problems')" % more if more > 0 else ""),
        problems,
    )


def describe(record: Record) -> str:
    return "%s (%s)" % (record.get("hostname"), record.get("id"))


def reads_by_id(desired: Sequence[DesiredContainer]) -> bool:
    """A single container named by id is read with one GET; anything else with one list read."""
    return len(desired) == 1 and desired[0].id is not None


def make_plan(desired: Sequence[DesiredContainer], current: Sequence[Record], settings: FleetSettings) -> List[Step]:
    """Steps in the order of ``desired``, or PlanRefused naming every item that cannot be converged."""
    by_id = {record["id"]: record for record in current}
    by_hostname: Dict[str, List[Record]] = {}
    for record in current:
        by_hostname.setdefault(record["hostname"], []).append(record)
    problems: Dict[str, str] = {}
    steps = []
    claimed: Dict[str, str] = {}
    for item in desired:
        key = item.label or item.name
        try:
            found = _resolve(item, by_id, by_hostname)
            if found is not None:
                if found["id"] in claimed:
                    raise HzelError("names container %s, which %s names too" % (describe(found), claimed[found["id"]]))
                claimed[found["id"]] = key
            steps.append(plan_step(item, found, settings))
        except HzelError as exc:
            problems[key] = exc.message
    if problems:
        titles = {item.label: item.title for item in desired if item.label}
        raise _refusal(problems, "the API cannot resize, repair or delete a container", titles)
    return steps


def _resolve(
    item: DesiredContainer, by_id: Dict[str, Record], by_hostname: Dict[str, List[Record]]
) -> Optional[Record]:
    if item.id is not None:
        record = by_id.get(item.id)
        if record is None:
            raise HzelError("container id %s was not found, or it is not visible to this api_token" % item.id)
        if item.hostname is not None and record["hostname"] != item.hostname:
            raise HzelError(
                "container id %s has hostname %r, not %r; the API cannot rename a container"
                % (item.id, record["hostname"], item.hostname)
            )
        return record
    matches = by_hostname.get(item.hostname or "", [])
    if len(matches) > 1:
        raise HzelError(
            "%d containers visible to this api_token have the hostname %s (ids %s); refusing to "
            "guess which one is meant: address it by id"
            % (len(matches), item.hostname, ", ".join(sorted(r["id"] for r in matches)))
        )
    return matches[0] if matches else None


def plan_step(item: DesiredContainer, record: Optional[Record], settings: FleetSettings) -> Step:
    """The step for one item against its current record (None: it does not exist)."""
    if record is None:
        if item.hostname is None:
            raise HzelError("container id %s was not found" % item.id)
        step = Step(
            item,
            None,
            "create",
            request="create",
            settle=settings.wait,
            after_settle="stop" if item.state == "stopped" else None,
        )
        # A new container is only created for 'restarted': it has just started.
        wanted = "running" if item.state == "restarted" else item.state
        step.predicted = dict(SPEC_DEFAULTS, **item.spec)
        step.predicted.update(
            id=None,
            user_id=None,
            hostname=item.hostname,
            created_at=None,
            state=_predicted_state(wanted, "provisioning", settings.wait),
        )
        return step
    drift = [
        "%s is %s, the parameters ask for %s" % (name, record[name], wanted)
        for name, wanted in sorted(item.spec.items())
        if record[name] != wanted
    ]
    if drift:
        raise HzelError(
            "container %s differs from the requested spec: %s. The hzel API cannot resize or delete a "
            "container: align the parameters with the container, or replace it under a new hostname"
            % (describe(record), "; ".join(drift))
        )
    if record["state"] == "failed":
        raise HzelError(
            "container %s is in state 'failed' (its provisioning failed); the hzel API cannot repair or "
            "delete it, so it must be replaced under a new hostname" % describe(record)
        )
    wanted = item.state
    state = record["state"]
    power: Optional[str] = None
    if wanted == "restarted":
        power = "restart"
    elif wanted == "running" and state == "stopped":
        power = "start"
    elif wanted == "stopped" and state != "stopped":
        power = "stop"
    step = Step(item, record, power or "none")
    if state == "provisioning":
        step.settle = settings.wait
        step.after_settle = power
    else:
        step.request = power
    step.predicted = dict(record, state=_predicted_state(wanted, state, settings.wait))
    return step


def _predicted_state(wanted: str, state: str, wait: bool) -> str:
    if wanted == "stopped":
        return "stopped"
    if wanted in ("running", "restarted") and state != "provisioning":
        return "running"
    if state == "provisioning":
        return "running" if wait or wanted == "restarted" else "provisioning"
    return state


def adopt(step: Step, record: Record, settings: FleetSettings) -> Step:
    """Re-plan a create whose hostname a concurrent run created: the usual spec and state rules apply."""
    adopted = plan_step(step.desired, record, settings)
    # Whatever it needs now is sent after the creates, with the follow-up requests.
    if adopted.request:
        adopted.after_settle, adopted.request = adopted.request, None
    return adopted


def diff_view(record: Optional[Record]) -> Dict[str, Any]:
    if record is None:
        return {}
    return {name: record.get(name) for name in DIFF_FIELDS}
