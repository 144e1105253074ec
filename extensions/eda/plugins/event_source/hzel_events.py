# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""An ansible-rulebook event source: changes of hzel containers, seen by polling the list endpoint."""

from __future__ import annotations

DOCUMENTATION = r"""
---
short_description: Events from hzel containers (created, state changes, failures, vanished, metric thresholds,
  group metrics)
description:
  - An ansible-rulebook event source that polls the hzel API's container list every O(interval) seconds and emits
    one event per change it observes between two polls, keyed by container id (a snapshot diff, not a time
    watermark, so clock skew and equal timestamps cannot hide or repeat a change).
  - Optionally reads the metrics of the running watched containers and emits an event when a reading reaches a
    threshold, and another when it falls back below the threshold less a margin (hysteresis).
  - Uses the collection's own API client (retries with backoff, C(Retry-After), a deadline per request, reply shape
    checks, token scrubbing); the shared options fall back to the same environment variables as the modules, so the
    collection's AWX credential type serves rulebook activations as well.
  - "Every event is C({\"hzel\": {...}, \"meta\": {\"hosts\": hostname}}). Keys of C(hzel) for every type: C(type),
    C(observed_at) (UTC, ISO 8601, when the poll that saw the change began). Container events (C(created),
    C(state_changed), C(failed), C(vanished), C(observed), C(threshold_exceeded), C(threshold_cleared)) also carry
    C(container) (the record: C(id), C(user_id), C(hostname), C(state), C(cpu_cores), C(memory_mb), C(disk_gb),
    C(created_at); for C(vanished) the last one seen), C(previous_state) (the state seen at the previous poll, null
    for a container seen for the first time) and C(startup) (true for events of the first poll)."
  - C(created) a container that was not there at the previous poll (its state in C(container.state)); C(failed) a
    container whose state became C(failed), including one seen for the first time already failed (a
    C(provisioning) to C(failed) change is this one event, never also a C(state_changed)); C(state_changed) any other
    change of state; C(vanished) a container no longer listed; C(observed) a container present at start (with
    O(startup_events=all)).
  - C(threshold_exceeded) and C(threshold_cleared) add C(metric) (C(cpu_percent), C(memory_percent) or
    C(disk_percent)), C(value), C(threshold), C(margin) and C(metrics) (the three percentages read).
  - "C(group_metrics) (with O(groups); one per group after every successful poll, the first included, whatever
    O(startup_events)) carries C(group) (the group's name), C(hostname_pattern), C(members) (integers: C(total) the
    members listed, C(running), C(counted) the running members whose metrics were read at this poll and that are not
    warming up, C(warming) the running members still in their O(groups.warmup), C(failed)), C(mean) and C(max)
    (each a dict of C(cpu_percent), C(memory_percent) and C(disk_percent) over the counted members; null when no
    member is counted), C(window) (C(min) and C(max), each a dict of the same three keys: the lowest and the highest
    group mean over the last O(groups.window) seconds; both null until the source has group means that span
    O(groups.window) seconds), and, with O(groups.autoscale), C(autoscale)."
  - "C(autoscale) is C(direction) (V(up), V(down) or null), C(metric), C(high), C(low), C(cooldown),
    C(stabilization) (the settings of O(groups.autoscale)) and C(reason) (a short sentence). V(up) when the group
    mean of the metric is above C(high); V(down) when the highest group mean of the metric over the last
    C(stabilization) seconds is below C(low) (and the source has group means that span them); null when no member
    is counted, and for the rest of a cooldown: at most one V(up) or V(down) per C(cooldown) seconds, counted from
    the later of the last decision and the last change the source saw in the group's count of active (running or
    provisioning) members. The source only decides; a rule acts (for example with the M(hzel.cloud.hzel_containers)
    module's count), and the next decision waits for the cooldown."
  - C(poll_failed) (after O(poll_failures) consecutive failed polls, once) carries C(error) (the client's message,
    scrubbed of the token, template markers neutralised), C(status) (the HTTP status or null), C(failures) and
    C(failing_since); C(poll_recovered) (the first good poll after a C(poll_failed)) carries C(failures) and
    C(failing_since). These two and C(group_metrics) have no C(meta) at all, so a group is never a play's limit.
  - C(meta.hosts) is the container's hostname, so that C(run_playbook) can limit a play to it; it is left out when
    more than one visible container holds that hostname (possible with an admin token). A limit is a host pattern,
    so a container named after a group (C(hzel), C(all), C(web)) selects the whole group. A rule that acts on one
    container should pass C(container.id) (as C(hzel_power_id) to the C(hzel.cloud.power) playbook) and drop
    C(meta) with C(eda.builtin.json_filter), as the collection's rulebooks do.
options:
  api_url:
    description:
      - Base URL of the hzel API, without C(/api/v1). If not set, the value of E(HZEL_API_URL) is used.
    type: str
    default: https://api.hzel.org
  api_token:
    description:
      - A personal access token or OAuth bearer token of the hzel API. If not set, the value of E(HZEL_API_TOKEN)
        is used; one of the two is required.
      - A token that the API refuses (HTTP 401 or 403) ends the source with a message that does not contain it.
    type: str
  validate_certs:
    description:
      - Whether to verify the TLS certificate of the API. If not set, the value of E(HZEL_VALIDATE_CERTS) is used.
    type: bool
    default: true
  api_timeout:
    description:
      - Seconds one HTTP request may take in all; greater than 0 and at most 3600. If not set, the value of
        E(HZEL_API_TIMEOUT) is used.
    type: float
    default: 30
  api_retries:
    description:
      - How many times a request is tried again after a transient failure, from 0 to 20. If not set, the value of
        E(HZEL_API_RETRIES) is used. A poll whose list request still fails is a failed poll (see O(poll_failures)).
    type: int
    default: 5
  api_rate_limit:
    version_added: 1.1.0
    description:
      - The most requests per second that the source sends, the list and the metrics requests together; unset means
        no limit of its own. A token bucket (a burst of up to one second's worth, at most 10). The budget is this
        source's own; several activations send up to the sum of their limits. Greater than 0 and at most 10000. If
        not set, the value of E(HZEL_API_RATE_LIMIT) is used.
    type: float
  interval:
    description:
      - Seconds from the start of one poll to the start of the next; at least 1 and at most 3600.
    type: float
    default: 30
  metrics_interval:
    version_added: 1.1.0
    description:
      - With O(thresholds), the seconds between two readings of one container's metrics; not below O(interval), at
        most 86400. Defaults to O(interval) (every running watched container is read at every poll).
      - "The readings are spread over the polls, not made in one burst: each poll reads the next
        ceil(N * interval / metrics_interval) of the N running watched containers, in turn, so that each is read
        about once per O(metrics_interval) while the list (and so every state change) is still read every
        O(interval)."
      - "Cost, in requests per second: C(1 / interval + N / metrics_interval). A reading that crosses a threshold
        is seen within about O(metrics_interval) + O(interval)."
    type: float
  shard:
    version_added: 1.1.0
    description:
      - "Watch only the containers of one shard of the fleet: O(shard.count) shards, this source taking the one of
        index O(shard.index) (counting from 0). A container belongs to the shard whose index is the CRC-32 of its
        hostname's UTF-8 bytes modulo O(shard.count), the same rule as the inventory plugin's O(shard); containers
        created later never move an existing one to another shard."
      - Several activations with the same O(shard.count) and each O(shard.index) split one fleet between them; each
        reads metrics for, and emits events of, its own shard's containers only.
      - An O(shard.index) not below O(shard.count), a O(shard.count) below 1 or above 1000, or another key ends the
        source before any request.
    type: dict
    suboptions:
      count:
        description: How many shards the fleet is split into, from 1 to 1000.
        type: int
        required: true
      index:
        description: The shard this source takes, from 0 to O(shard.count) minus 1.
        type: int
        required: true
  state:
    description:
      - Emit container events only for containers in one of these states (after the change; for C(vanished), the
        last state seen). Every container is still tracked, so a change into a listed state is seen as a change.
    type: list
    elements: str
    choices: [provisioning, running, stopped, failed]
    default: [provisioning, running, stopped, failed]
  hostnames:
    description:
      - Watch only containers whose hostname matches one of these shell-style patterns (C(*), C(?), C([...])).
    type: list
    elements: str
    default: ["*"]
  events:
    description:
      - The event types to emit; every change is still tracked.
    type: list
    elements: str
    choices: [created, state_changed, failed, vanished, threshold_exceeded, threshold_cleared, observed, group_metrics,
      poll_failed, poll_recovered]
    default: [created, state_changed, failed, vanished, threshold_exceeded, threshold_cleared, observed, group_metrics,
      poll_failed, poll_recovered]
  startup_events:
    description:
      - What the first successful poll emits. V(none) nothing (it is the baseline; a reading already over a
        threshold is taken as exceeded without an event). V(failed) one C(failed) event for each container that is
        failed at start, so that a failure that happened while nothing watched is still reported once, and a
        C(threshold_exceeded) for each reading at or over a threshold. V(all) as V(failed), and one C(observed)
        event for every other watched container.
    type: str
    choices: [none, failed, all]
    default: failed
  thresholds:
    description:
      - Percentages at or above which a reading of a running watched container emits C(threshold_exceeded), with
        the keys C(cpu_percent), C(memory_percent) (C(memory_used_mb) of C(memory_total_mb)) and C(disk_percent)
        (C(disk_used_gb) of C(disk_total_gb)); each greater than 0 and at most 100, so that a threshold of 100
        fires on a full reading.
      - Metrics are read only when this is set, and only for running watched containers.
    type: dict
    default: {}
  threshold_margin:
    description:
      - A container at or over a threshold emits C(threshold_cleared) once its reading is below the threshold and
        at or below the threshold less this many percentage points, and only then can exceed it again. At least 0
        and less than every threshold.
    type: float
    default: 5
  metrics_workers:
    description:
      - How many metrics requests are in flight at once; from 1 to 64.
    type: int
    default: 8
  poll_failures:
    description:
      - After this many consecutive failed polls, one C(poll_failed) event; the first good poll after it emits one
        C(poll_recovered). From 1 to 1000.
    type: int
    default: 3
  groups:
    version_added: 1.1.0
    description:
      - "Groups of containers to measure together, each emitting one C(group_metrics) event per poll: a mapping of
        group names (lowercase letters, digits and hyphens, starting with a letter, at most 63 characters; at most
        100 groups) to groups."
      - "A group's members are the watched containers (see O(hostnames) and O(shard)) whose hostname
        O(groups.hostname_pattern) renders for some index: the same pattern and the same membership rule as the
        M(hzel.cloud.hzel_containers) module's count, so that a rule can scale exactly the group it measures."
      - "The metrics of every running member are read at every poll, whatever O(metrics_interval) and O(thresholds):
        one metrics request per running member per poll, that is C(M / interval) requests per second for M running
        members (a container that is also in the threshold readings' turn is read once)."
      - Needs V(group_metrics) in O(events) (it is there when O(events) is not given).
      - "Each group takes O(groups.hostname_pattern) (required), O(groups.index_start) (default 1),
        O(groups.window) (seconds, default 300), O(groups.warmup) (seconds, default 60) and O(groups.autoscale)
        (O(groups.autoscale.metric), O(groups.autoscale.high), O(groups.autoscale.low), O(groups.autoscale.cooldown),
        O(groups.autoscale.stabilization)); each is described below. Numbers may be given as text (rulebook
        variables arrive so); a bad value or an unknown key ends the source with a message that names it."
    type: dict
    suboptions:
      hostname_pattern:
        description:
          - The members' hostnames, with exactly one placeholder V({index}) (or V({index:02d}) for zero padding, up to
            9 digits) after a literal prefix that starts with a letter, for example V(web-{index}). V(web-01) is not a
            member of V(web-{index}), nor V(web-1) of V(web-{index:02d}).
        type: str
        required: true
      index_start:
        description:
          - The lowest index of new members, as with M(hzel.cloud.hzel_containers); members of lower indexes still
            belong to the group. From 0 to 1000000.
        type: int
        default: 1
      window:
        description:
          - Seconds over which C(window.min) and C(window.max) are taken; from 1 to 86400.
        type: float
        default: 300
      warmup:
        description:
          - Seconds after the source sees a member become running during which it is C(warming), not counted (its
            first readings are often not typical). Members already running when the source starts are counted at once.
            From 0 to 86400.
        type: float
        default: 60
      autoscale:
        description:
          - When given, the group's events carry C(autoscale), a scaling decision (see the description above).
            Numbers may be given as strings of digits, as rulebook variables arrive.
        type: dict
        suboptions:
          metric:
            description: The metric whose group mean decides.
            type: str
            choices: [cpu_percent, memory_percent]
            default: cpu_percent
          high:
            description: A group mean above this percentage decides V(up); greater than 0 and at most 100.
            type: float
            default: 70
          low:
            description:
              - A highest group mean over O(groups.autoscale.stabilization) below this percentage decides V(down);
                from 0 to 100 and below O(groups.autoscale.high).
            type: float
            default: 20
          cooldown:
            description:
              - Seconds after a decision, or after a change in the group's count of active members, during which no
                other decision is made; from 0 to 86400.
            type: float
            default: 300
          stabilization:
            description:
              - Seconds that the group mean must have stayed below O(groups.autoscale.low) before V(down); from 0 to
                86400.
            type: float
            default: 300
notes:
  - "What a poller cannot see: a change undone between two polls (a container that stops and starts again within
    O(interval)) gives no event, and of the changes made while the source is not running only what O(startup_events)
    reports is seen (a container created and removed meanwhile is never seen)."
  - "What it costs: one request per poll, plus, with O(thresholds), one metrics request per running watched
    container every O(metrics_interval) (by default every poll), spread over the polls, and, with O(groups), one
    metrics request per running group member at every poll. A failed poll emits
    nothing and keeps the last snapshot, so the first good poll after it reports every change since, once."
  - "Only validated data is emitted: hostnames are DNS labels, ids UUIDs, states one of the four, the spec fields
    integers, C(created_at) a timestamp, metrics finite numbers, and C({{), C({%) and C({#) in an error text are
    broken up (C({ {)), so no field of an event can be a Jinja2 template when a playbook reads C(ansible_eda.event).
    A record that fails these checks is skipped, with one warning per poll; but for a container seen before whose
    id is still listed, its last good record stands (one warning, until a good record comes), so a malformed
    record never makes it vanish and appear again."
  - An argument that is not one of these (or starts with C(eda_), which ansible-rulebook adds) ends the source with
    a message naming the nearest one.
"""

EXAMPLES = r"""
---
- name: React to hzel containers
  hosts: all
  sources:
    - hzel.cloud.hzel_events:
        interval: 30
        hostnames: ["web-*"]
        startup_events: failed
        thresholds:
          memory_percent: 90
        threshold_margin: 10
        groups:
          web:
            hostname_pattern: "web-{index}"
            autoscale:
              metric: cpu_percent
              high: 70
              low: 20
  rules:
    - name: A container failed
      condition: event.hzel.type == "failed"
      action:
        debug:
          msg: "{{ event.hzel.container.hostname }} failed"
    - name: The web group is busy
      condition: event.hzel.type == "group_metrics" and event.hzel.autoscale.direction == "up"
      action:
        debug:
          msg: "{{ event.hzel.group }}: {{ event.hzel.autoscale.reason }}"
"""

import asyncio  # noqa: E402
import datetime  # noqa: E402
import fnmatch  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import queue as queue_module  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Set, Tuple  # noqa: E402


def _make_collection_importable() -> None:
    """Put the folder that holds ``ansible_collections/`` on sys.path.

    ansible-rulebook loads a source file with runpy, so the collection's own
    code is importable only once that folder is on the path.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    # <root>/ansible_collections/hzel/cloud/extensions/eda/plugins/event_source
    root = os.path.abspath(os.path.join(here, *[os.pardir] * 7))
    if os.path.isdir(os.path.join(root, "ansible_collections", "hzel", "cloud")) and root not in sys.path:
        sys.path.insert(0, root)


_make_collection_importable()

from ansible_collections.hzel.cloud.plugins.module_utils._containers import (  # noqa: E402
    CONTAINER_STATES,
    LIST_REPLY_MAX,
    RECORD_FIELDS,
    is_container_id,
)
from ansible_collections.hzel.cloud.plugins.module_utils._options import (  # noqa: E402
    API_OPTIONS,
    RATE_OPTIONS,
    SPEC_FIELDS,
    InvalidParameters,
    build_client,
    check_number,
    unknown_keys,
)
from ansible_collections.hzel.cloud.plugins.module_utils._plan import is_hostname  # noqa: E402
from ansible_collections.hzel.cloud.plugins.module_utils._shard import Shard, parse_shard  # noqa: E402
from ansible_collections.hzel.cloud.plugins.module_utils._transport import (  # noqa: E402
    HzelAuthError,
    HzelError,
    Scrubber,
    plain_number,
)
from ansible_collections.hzel.cloud.plugins.module_utils._watch import (  # noqa: E402
    METRICS,
    Group,
    Snapshot,
    WatchConfig,
    Watcher,
    parse_groups,
)

logger = logging.getLogger("hzel.cloud.hzel_events")

SOURCE = "hzel.cloud.hzel_events"
CONTAINER_EVENTS = (
    "created",
    "state_changed",
    "failed",
    "vanished",
    "threshold_exceeded",
    "threshold_cleared",
    "observed",
)
GROUP_EVENTS = ("group_metrics",)
POLL_EVENTS = ("poll_failed", "poll_recovered")
EVENT_TYPES = CONTAINER_EVENTS + GROUP_EVENTS + POLL_EVENTS
STARTUP_EVENTS = ("none", "failed", "all")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?")
# The openers of Jinja2 expressions, statements and comments.
_TEMPLATE_OPENER = re.compile(r"\{(?=[{%#])")
# Keys that ansible-rulebook itself adds to a source's arguments.
_RULEBOOK_PREFIX = "eda_"


class Argument(NamedTuple):
    type: str
    default: Any
    env: Optional[str] = None
    low: Optional[float] = None
    high: Optional[float] = None
    choices: Optional[Tuple[str, ...]] = None
    low_inclusive: bool = True


ARGUMENTS: Dict[str, Argument] = {
    # The shared options as the modules define them; build_client checks a timeout's low bound exclusively and a
    # count's inclusively.
    **{
        name: Argument(spec.type, spec.default, spec.env, spec.low, spec.high, low_inclusive=spec.type == "int")
        for name, spec in list(API_OPTIONS.items()) + list(RATE_OPTIONS.items())
    },
    "interval": Argument("float", 30.0, None, 1, 3600),
    "metrics_interval": Argument("float", None, None, 1, 86400),
    "shard": Argument("dict", None),
    "state": Argument("list", list(CONTAINER_STATES), choices=CONTAINER_STATES),
    "hostnames": Argument("list", ["*"]),
    "events": Argument("list", list(EVENT_TYPES), choices=EVENT_TYPES),
    "startup_events": Argument("str", "failed", choices=STARTUP_EVENTS),
    "thresholds": Argument("dict", {}),
    "threshold_margin": Argument("float", 5.0, None, 0, 100),
    "metrics_workers": Argument("int", 8, None, 1, 64),
    "poll_failures": Argument("int", 3, None, 1, 1000),
    "groups": Argument("dict", None),
}

_TRUE = ("1", "true", "yes", "on", "y", "t")
_FALSE = ("0", "false", "no", "off", "n", "f")


class Settings(NamedTuple):
    api: Dict[str, Any]
    interval: float
    states: Tuple[str, ...]
    hostnames: Tuple[str, ...]
    events: Tuple[str, ...]
    startup_events: str
    thresholds: Dict[str, float]
    threshold_margin: float
    metrics_workers: int
    poll_failures: int
    metrics_interval: float = 30.0
    shard: Optional[Shard] = None
    groups: Tuple[Group, ...] = ()


def _bounds(spec: Argument) -> str:
    """The bounds of a number argument, as check_number words them."""
    low = "%s %s" % ("at least" if spec.low_inclusive else "greater than", plain_number(spec.low or 0))
    return "%s and at most %s" % (low, plain_number(spec.high or 0))


def _convert(name: str, spec: Argument, value: Any) -> Any:
    """A value of the argument's type (strings from the environment or a template converted), or InvalidParameters."""
    shown = "a value" if name == "api_token" else repr(value)
    if spec.type == "bool":
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        if not isinstance(value, bool):
            raise InvalidParameters("%s must be true or false, got %s" % (name, shown))
        return value
    if spec.type in ("int", "float"):
        if isinstance(value, str):
            try:
                value = int(value.strip()) if spec.type == "int" else float(value.strip())
            except ValueError:
                raise InvalidParameters("%s must be a number, got %s" % (name, shown)) from None
        try:
            if spec.type == "float" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            return check_number(name, value, spec.low, spec.high, spec.type == "int", spec.low_inclusive)
        except OverflowError:  # an integer too large for a float: out of every bound
            raise InvalidParameters(
                "%s must be %s, got a number of %d digits" % (name, _bounds(spec), len(str(abs(value))))
            ) from None
    if spec.type == "str":
        if not isinstance(value, str):
            raise InvalidParameters("%s must be a string, got %s" % (name, shown))
        if spec.choices and value not in spec.choices:
            raise InvalidParameters("%s must be one of %s, got %s" % (name, ", ".join(spec.choices), shown))
        return value
    if spec.type == "list":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
            raise InvalidParameters("%s must be a non-empty list of strings, got %s" % (name, shown))
        wrong = [item for item in value if spec.choices and item not in spec.choices]
        if wrong:
            raise InvalidParameters(
                "%s: %s not one of %s"
                % (name, ", ".join(unknown_keys(wrong, spec.choices or ())), ", ".join(spec.choices or ()))
            )
        return value
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameters("%s must be a mapping, got %s" % (name, shown))
    return value


def parse_arguments(args: Dict[str, Any], environ: Optional[Mapping[str, str]] = None) -> Settings:
    """The source's settings from its arguments and the environment; InvalidParameters names what is wrong."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    given = {key: value for key, value in args.items() if not str(key).startswith(_RULEBOOK_PREFIX)}
    unknown = unknown_keys(given, ARGUMENTS)
    if unknown:
        raise InvalidParameters(
            "%s: unknown argument%s %s; the arguments are %s"
            % (SOURCE, "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(sorted(ARGUMENTS)))
        )
    values: Dict[str, Any] = {}
    for name, spec in ARGUMENTS.items():
        value = given.get(name)
        if value is None and spec.env and env.get(spec.env) not in (None, ""):
            value = env[spec.env]
        if value is None:
            values[name] = spec.default
            continue
        values[name] = _convert(name, spec, value)
    thresholds = {}
    problems = unknown_keys(values["thresholds"], METRICS)
    if problems:
        raise InvalidParameters(
            "thresholds: unknown key%s %s; the keys are %s"
            % ("s" if len(problems) > 1 else "", ", ".join(problems), ", ".join(METRICS))
        )
    for metric, limit in values["thresholds"].items():
        spec = Argument("float", None, None, 0, 100, low_inclusive=False)
        thresholds[metric] = _convert("thresholds.%s" % metric, spec, limit)
    margin = values["threshold_margin"]
    if thresholds and margin >= min(thresholds.values()):
        raise InvalidParameters(
            "threshold_margin must be less than every threshold (a reading could never clear), got %r" % margin
        )
    metrics_interval = values["metrics_interval"]
    if metrics_interval is None:
        metrics_interval = values["interval"]
    elif metrics_interval < values["interval"]:
        raise InvalidParameters(
            "metrics_interval must not be below interval (%s s): a container's metrics are read at most once a poll, "
            "got %s" % (plain_number(values["interval"]), plain_number(metrics_interval))
        )
    shard_given = given.get("shard")
    if isinstance(shard_given, dict):
        # Rulebook variables arrive as text when templated: whole numbers written with digits are taken as such.
        shard_given = {
            key: int(value) if isinstance(value, str) and value.strip().isdigit() else value
            for key, value in shard_given.items()
        }
    shard = parse_shard(shard_given)
    groups = parse_groups(given.get("groups"))
    if groups and "group_metrics" not in values["events"]:
        raise InvalidParameters(
            "groups needs group_metrics among events (or events left unset): no group would give an event"
        )
    if not values["api_token"]:
        raise HzelAuthError("No hzel API token was given: set api_token or the HZEL_API_TOKEN environment variable")
    api = {name: values[name] for name in list(API_OPTIONS) + list(RATE_OPTIONS)}
    return Settings(
        api=api,
        interval=values["interval"],
        states=tuple(values["state"]),
        hostnames=tuple(values["hostnames"]),
        events=tuple(values["events"]),
        startup_events=values["startup_events"],
        thresholds=thresholds,
        threshold_margin=float(margin),
        metrics_workers=values["metrics_workers"],
        poll_failures=values["poll_failures"],
        metrics_interval=float(metrics_interval),
        shard=shard,
        groups=groups,
    )


# --- validation of what the API sent ------------------------------------------------------------------
def neutralise(text: Any) -> str:
    """Free text that no Jinja2 environment reads as a template: ``{{`` becomes ``{ {``, as do ``{%`` and ``{#``."""
    return _TEMPLATE_OPENER.sub("{ ", str(text))


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_timestamp(value: Any) -> bool:
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        return False
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return False
    return True


def record_problem(value: Any) -> Optional[str]:
    """Why a container record cannot be emitted (without repeating its content), or None."""
    if not isinstance(value, dict):
        return "not an object"
    for field in RECORD_FIELDS:
        if field not in value:
            return "no %s" % field
    if not is_container_id(value["id"]):
        return "id is not a UUID"
    if not is_container_id(value["user_id"]):
        return "user_id is not a UUID"
    if not is_hostname(value["hostname"]):
        return "hostname is not a DNS label"
    if value["state"] not in CONTAINER_STATES:
        return "state is not one of %s" % ", ".join(CONTAINER_STATES)
    for field in SPEC_FIELDS:
        if not _is_integer(value[field]) or value[field] < 0:
            return "%s is not a whole number" % field
    if not is_timestamp(value["created_at"]):
        return "created_at is not a timestamp"
    return None


def percentages(metrics: Any) -> Optional[Dict[str, float]]:
    """CPU, memory and disk use in percent from a metrics reading; None when any figure is not a finite number."""
    if not isinstance(metrics, dict):
        return None
    figures = {}
    for field in ("cpu_percent", "memory_used_mb", "memory_total_mb", "disk_used_gb", "disk_total_gb"):
        value = metrics.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        try:
            figure = float(value)
        except OverflowError:  # an integer too large for a float
            return None
        if not math.isfinite(figure) or figure < 0:
            return None
        figures[field] = figure
    if figures["memory_total_mb"] <= 0 or figures["disk_total_gb"] <= 0:
        return None
    result = {
        "cpu_percent": round(figures["cpu_percent"], 2),
        "memory_percent": round(100.0 * figures["memory_used_mb"] / figures["memory_total_mb"], 2),
        "disk_percent": round(100.0 * figures["disk_used_gb"] / figures["disk_total_gb"], 2),
    }
    # Finite figures can still give an infinite quotient (1e300 / 1e-300): not a reading to emit.
    return result if all(math.isfinite(value) for value in result.values()) else None


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- running blocking client calls without blocking the event loop -----------------------------------
class Workers:
    """A few daemon threads that run the client's (blocking) calls for the event loop.

    Daemon threads, not the loop's default executor: an abandoned request (the
    source was cancelled) must neither delay cancellation nor keep the process
    alive while it waits out its deadline and retries.
    """

    def __init__(self, size: int) -> None:
        self._jobs: queue_module.SimpleQueue[Any] = queue_module.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name="hzel-events-%d" % number, daemon=True) for number in range(size)
        ]
        for thread in self._threads:
            thread.start()

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((function, args, future, loop))
        return await future

    def close(self) -> None:
        for _thread in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            function, args, future, loop = job
            if future.cancelled():
                continue
            try:
                outcome, failed = function(*args), False
            except BaseException as exc:  # handed to the waiting coroutine, which raises it
                outcome, failed = exc, True
            try:
                loop.call_soon_threadsafe(_settle, future, outcome, failed)
            except RuntimeError:  # the loop is closed: nobody waits for this any more
                pass


def _settle(future: asyncio.Future[Any], outcome: Any, failed: bool) -> None:
    if future.done():
        return
    if failed:
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


async def _pause(seconds: float) -> None:
    """The wait between two polls (its own name, so that tests can step polls one by one)."""
    await asyncio.sleep(seconds)


# --- the source -----------------------------------------------------------------------------------------
def _clock() -> float:
    """Seconds on a monotonic scale (its own name, so that tests can step the time the watcher sees)."""
    return time.monotonic()


class HzelEventSource:
    def __init__(self, settings: Settings, client: Any, workers: Workers) -> None:
        self.settings = settings
        self.client = client
        self.workers = workers
        self.scrub = Scrubber(settings.api.get("api_token"))
        self.watcher = Watcher(
            WatchConfig(
                states=settings.states,
                events=settings.events,
                startup_events=settings.startup_events,
                thresholds=settings.thresholds,
                threshold_margin=settings.threshold_margin,
                interval=settings.interval,
                metrics_interval=settings.metrics_interval,
                groups=settings.groups,
            ),
            clock=self.clock,
        )
        # Ids whose malformed record was already warned about (and still is malformed).
        self.malformed: Set[str] = set()
        self.failed_polls = 0
        self.failing_since: Optional[str] = None
        self.reported_failure = False

    def clock(self) -> float:
        # Looked up at each call, so that a test can replace _clock.
        return _clock()

    async def run(self, queue: Any) -> None:
        while True:
            started = time.monotonic()
            for event in await self.poll():
                await queue.put(event)
            await _pause(max(0.0, self.settings.interval - (time.monotonic() - started)))

    async def poll(self) -> List[Dict[str, Any]]:
        """One poll: the events it observed, in order."""
        observed_at = utc_now()
        try:
            snapshot = await self.workers.run(self.read_snapshot)
        except HzelError as exc:
            self.raise_if_refused(exc)
            return self.poll_failed(exc, observed_at)
        events = self.poll_recovered(observed_at)
        if snapshot.skipped:
            logger.warning(
                "%s: skipped %d container record%s that do not match the API reference (%s)",
                SOURCE,
                len(snapshot.skipped),
                "" if len(snapshot.skipped) == 1 else "s",
                "; ".join(snapshot.skipped[:5]),
            )
        newly_kept = sorted(
            (snapshot.records[container_id]["hostname"], problem)
            for container_id, problem in snapshot.kept.items()
            if container_id not in self.malformed
        )
        if newly_kept:
            logger.warning(
                "%s: %d listed container%s sent a record that does not match the API reference; the last good "
                "record stands until a good one comes (%s)",
                SOURCE,
                len(newly_kept),
                "" if len(newly_kept) == 1 else "s",
                "; ".join("%s: %s" % item for item in newly_kept[:5]),
            )
        self.malformed = set(snapshot.kept)
        changes, to_read = self.watcher.start_poll(snapshot, observed_at)
        events.extend(changes)
        events.extend(self.watcher.end_poll(await self.read_all_metrics(to_read)))
        return events

    # reading -------------------------------------------------------------------------------------------
    def read_snapshot(self) -> Snapshot:
        """The watched containers whose records pass every check, and why the others were skipped."""
        # The raw list, so that one bad record is skipped on its own instead of failing the whole poll;
        # every record is checked below, more strictly than the client's shape check.
        data = self.client.transport.request("GET", self.client.PATH, max_bytes=LIST_REPLY_MAX)
        if not isinstance(data, list):
            raise HzelError("The hzel API answered the container list with something that is not a list")
        records: Dict[str, Dict[str, Any]] = {}
        hostname_counts: Dict[str, int] = {}
        skipped = []
        kept: Dict[str, str] = {}
        known = self.watcher.known or {}
        for index, item in enumerate(data):
            hostname = item.get("hostname") if isinstance(item, dict) else None
            if isinstance(hostname, str):
                hostname_counts[hostname] = hostname_counts.get(hostname, 0) + 1
            problem = record_problem(item)
            if problem is None and item["id"] in records:
                problem = "a second record with the same id"
            if problem:
                container_id = item.get("id") if isinstance(item, dict) else None
                if is_container_id(container_id) and container_id in known and container_id not in records:
                    # Still listed, so still there: a malformed record is no reason to report it vanished (and
                    # created again at the next good one).
                    records[container_id] = known[container_id]
                    kept[container_id] = problem
                else:
                    skipped.append("data[%d]: %s" % (index, problem))
                continue
            if not any(fnmatch.fnmatchcase(item["hostname"], pattern) for pattern in self.settings.hostnames):
                continue
            if self.settings.shard and not self.settings.shard.holds(item["hostname"]):
                continue
            records[item["id"]] = {field: item[field] for field in RECORD_FIELDS}
        return Snapshot(records, hostname_counts, skipped, kept)

    def raise_if_refused(self, exc: HzelError) -> None:
        if isinstance(exc, HzelAuthError) or exc.status in (401, 403):
            raise HzelAuthError(
                "%s stops: the hzel API refused the api_token (%s)" % (SOURCE, self.scrub(exc.message)),
                exc.status,
                exc.code,
            ) from None

    async def read_all_metrics(self, records: List[Dict[str, Any]]) -> Dict[str, Any]:
        """The readings of these containers: id -> percentages, or a short reason why there are none."""
        readings = await asyncio.gather(*(self.read_metrics(record["id"]) for record in records))
        problems = [
            "%s: %s" % (record["hostname"], reading)
            for record, reading in zip(records, readings)
            if isinstance(reading, str)
        ]
        if problems:
            logger.warning(
                "%s: the metrics of %d container%s could not be read (%s)",
                SOURCE,
                len(problems),
                "" if len(problems) == 1 else "s",
                "; ".join(problems[:5]),
            )
        return {record["id"]: reading for record, reading in zip(records, readings)}

    async def read_metrics(self, container_id: str) -> Any:
        """The percentages of one container, or a short reason why there are none."""
        try:
            reading = await self.workers.run(self.client.metrics, container_id)
        except HzelError as exc:
            self.raise_if_refused(exc)
            return self.scrub.excerpt(neutralise(exc.message), 200)
        figures = percentages(reading)
        return "the reading is not finite numbers" if figures is None else figures

    def poll_failed(self, exc: HzelError, observed_at: str) -> List[Dict[str, Any]]:
        self.failed_polls += 1
        if self.failing_since is None:
            self.failing_since = observed_at
        message = neutralise(self.scrub(exc.message))
        logger.warning(
            "%s: %d failed poll%s in a row, the last: %s",
            SOURCE,
            self.failed_polls,
            "" if self.failed_polls == 1 else "s",
            message,
        )
        if self.reported_failure or self.failed_polls < self.settings.poll_failures:
            return []
        self.reported_failure = True
        if "poll_failed" not in self.settings.events:
            return []
        return [
            self.watcher.event(
                "poll_failed",
                observed_at,
                error=message,
                status=exc.status if _is_integer(exc.status) else None,
                failures=self.failed_polls,
                failing_since=self.failing_since,
            )
        ]

    def poll_recovered(self, observed_at: str) -> List[Dict[str, Any]]:
        events = []
        if self.reported_failure and "poll_recovered" in self.settings.events:
            events.append(
                self.watcher.event(
                    "poll_recovered", observed_at, failures=self.failed_polls, failing_since=self.failing_since
                )
            )
        self.failed_polls = 0
        self.failing_since = None
        self.reported_failure = False
        return events


async def main(queue: Any, args: Dict[str, Any]) -> None:
    """Poll the hzel API and put one event on the queue per change observed, until cancelled.

    Ends with an HzelError (its message scrubbed of the token) for bad arguments
    and for a token the API refuses; every other API failure is counted and the
    polls go on.
    """
    settings = parse_arguments(dict(args or {}))
    client = build_client(settings.api, pool_size=settings.metrics_workers)
    workers = Workers(settings.metrics_workers)
    try:
        await HzelEventSource(settings, client, workers).run(queue)
    finally:
        workers.close()
        client.transport.close()


if __name__ == "__main__":
    # Standalone: python hzel_events.py '{"interval": 5}' prints the events (token from HZEL_API_TOKEN).
    import json

    class MockQueue:
        async def put(self, event: Dict[str, Any]) -> None:
            print(json.dumps(event, sort_keys=True))  # noqa: T201

    logging.basicConfig(level=logging.INFO)
    try:
        asyncio.run(main(MockQueue(), json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}))
    except KeyboardInterrupt:
        pass
    except HzelError as failure:
        sys.exit(str(failure))
