# The containers endpoints of the hzel API client: paths, reply caps and shape checks, creates that never double.
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""The containers endpoints of the hzel API, over the transport.

Every reply is checked for shape here, in one place: a record missing a field
or carrying one of the wrong type is an :class:`HzelUnexpectedReply` naming the
endpoint, never a bare Python error further on. Records are returned with the
reference's fields only.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.hzel.cloud.plugins.module_utils._transport import (
    HzelBadRequest,
    HzelError,
    HzelTransport,
    HzelUnexpectedReply,
    Scrubber,
)

RECORD_FIELDS = ("id", "user_id", "hostname", "state", "cpu_cores", "memory_mb", "disk_gb", "created_at")
CONTAINER_STATES = ("provisioning", "running", "stopped", "failed")
METRICS_FIELDS = ("cpu_percent", "memory_used_mb", "memory_total_mb", "disk_used_gb", "disk_total_gb")
_STRING_FIELDS = ("id", "user_id", "hostname", "state", "created_at")
_INTEGER_FIELDS = ("cpu_cores", "memory_mb", "disk_gb")
# What the API says when a hostname is taken: the reference names no code for it, the API answers
# "hostname: <name> is already in use". A refusal that does not speak of the hostname (a quota:
# "you have already reached your limit") is not this one.
_TAKEN = re.compile(
    r"\bhostname\b.*\b(is already in use|already (in use|exists|taken)|is taken|in use|not unique|duplicate)\b",
    re.IGNORECASE | re.DOTALL,
)
# The largest reply of each endpoint: a list for a fleet of 80,000 containers of the
# reference's size (10,000 are about 2 MB), one record, one set of metrics.
LIST_REPLY_MAX = 16 * 1024 * 1024
RECORD_REPLY_MAX = 64 * 1024
METRICS_REPLY_MAX = 16 * 1024

Record = Dict[str, Any]


class HostnameHeldElsewhere(HzelBadRequest):
    """The API refused a create because another account holds the hostname."""


# Integers a JSON consumer reads exactly (JavaScript, jq, AWX): a larger one is off-spec, not a count.
_INTEGER_LIMIT = 2**53


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -_INTEGER_LIMIT < value < _INTEGER_LIMIT


def _is_number(value: Any) -> bool:
    # 1e999 in JSON reads as infinity, NaN compares false with everything, and a 400-digit integer does not
    # fit a float: numbers, but none that a metric can be.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and -_INTEGER_LIMIT < value < _INTEGER_LIMIT


def _shape_problem(value: Any, label: str, excerpt: Callable[[Any, int], str]) -> Optional[str]:
    """What is wrong with a record, quoting reply text only through ``excerpt`` (the scrubber's)."""
    if _well_formed(value):
        return None
    if not isinstance(value, dict):
        return "%s is %s, not an object" % (label, _kind(value))
    for field in RECORD_FIELDS:
        if field not in value:
            return "%s has no %r" % (label, field)
    for field in _STRING_FIELDS:
        if not isinstance(value[field], str) or (field in ("id", "hostname") and not value[field]):
            return "%s.%s is %s, not a non-empty string" % (label, field, _kind(value[field]))
    for field in _INTEGER_FIELDS:
        if not _is_integer(value[field]):
            return "%s.%s is %s, not an integer" % (label, field, _kind(value[field]))
    if value["state"] not in CONTAINER_STATES:
        return "%s.state is %r, not one of %s" % (label, excerpt(value["state"], 40), ", ".join(CONTAINER_STATES))
    return None


def _well_formed(value: Any) -> bool:
    """The common case of _shape_problem in one expression (a list of 10,000 records is checked record by record)."""
    try:
        cpu_cores, memory_mb, disk_gb = value["cpu_cores"], value["memory_mb"], value["disk_gb"]
        return (
            isinstance(value, dict)
            and isinstance(value["id"], str)
            and isinstance(value["hostname"], str)
            and isinstance(value["user_id"], str)
            and isinstance(value["created_at"], str)
            and value["id"] != ""
            and value["hostname"] != ""
            and isinstance(cpu_cores, int)
            and isinstance(memory_mb, int)
            and isinstance(disk_gb, int)
            and not isinstance(cpu_cores, bool)
            and not isinstance(memory_mb, bool)
            and not isinstance(disk_gb, bool)
            and -_INTEGER_LIMIT < cpu_cores < _INTEGER_LIMIT
            and -_INTEGER_LIMIT < memory_mb < _INTEGER_LIMIT
            and -_INTEGER_LIMIT < disk_gb < _INTEGER_LIMIT
            and value["state"] in CONTAINER_STATES
        )
    except (KeyError, TypeError, IndexError):
        return False


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), "a %s" % type(value).__name__)


class ContainersAPI:
    """``/api/v1/containers`` and the resources below it."""

    PATH = "/containers"

    def __init__(self, transport: HzelTransport) -> None:
        self.transport = transport
        # Reply text is quoted only through the transport's scrubber: scrubbed, then cut.
        self._scrubber: Scrubber = transport.scrub
        self._excerpt = transport.scrub.excerpt

    def scrub(self, text: Any) -> str:
        return self._scrubber(text)

    # reading ---------------------------------------------------------------
    def list(self) -> List[Record]:
        data = self.transport.request("GET", self.PATH, max_bytes=LIST_REPLY_MAX)
        if not isinstance(data, list):
            raise self._unexpected("GET", self.PATH, "data is %s, not a list" % _kind(data))
        return [self._record(item, "GET", self.PATH, "data[%d]" % index) for index, item in enumerate(data)]

    def get(self, container_id: str) -> Record:
        path = self._path(container_id)
        return self._record(self.transport.request("GET", path, max_bytes=RECORD_REPLY_MAX), "GET", path)

    def find(self, hostname: str) -> List[Record]:
        """Every visible container with this hostname (an admin may see more than one)."""
        return [record for record in self.list() if record["hostname"] == hostname]

    def metrics(self, container_id: str) -> Dict[str, Any]:
        path = self._path(container_id, "metrics")
        data = self.transport.request("GET", path, max_bytes=METRICS_REPLY_MAX)
        if not isinstance(data, dict):
            raise self._unexpected("GET", path, "data is %s, not an object" % _kind(data))
        for field in METRICS_FIELDS:
            if not _is_number(data.get(field)):
                raise self._unexpected(
                    "GET", path, "data.%s is %s, not a finite number" % (field, _kind(data.get(field)))
                )
        return {field: data[field] for field in METRICS_FIELDS}

    # changing --------------------------------------------------------------
    def create(self, spec: Dict[str, Any]) -> Record:
        """Create a container, never two, and adopt one that a concurrent run created.

        The API has no idempotency key: after a reply that leaves the outcome open
        (a lost reply, a timeout, a 5xx) the hostname is looked up before the
        create is sent again. A create given up at ``api_timeout`` has its
        connection closed, but the API may still commit it after that lookup:
        the create that is then sent again is refused because the hostname is
        taken, by this very run. So when the API refuses the create and the
        hostname turns out to be visible to the caller, the container is this
        run's own (returned as created) if an earlier attempt of this create
        had an open outcome, and otherwise a concurrent run's (returned marked
        ``adopted``).
        """
        hostname = spec["hostname"]
        open_outcomes = []

        def already_created() -> Optional[Record]:
            open_outcomes.append(True)
            return self._one_by_hostname(hostname)

        try:
            data = self.transport.request(
                "POST", self.PATH, body=spec, resolve_open_outcome=already_created, max_bytes=RECORD_REPLY_MAX
            )
        except HzelBadRequest as exc:
            failure: HzelError = exc
            refused = True
        except HzelError as exc:
            failure = exc
            refused = False
        else:
            return self._created(data, spec)
        if refused or (failure.status or 0) >= 500:
            found = self._one_by_hostname(hostname)
            if found is not None:
                return dict(found, adopted=True) if refused and not open_outcomes else found
            if refused and _TAKEN.search(failure.message):
                raise HostnameHeldElsewhere(
                    "The hzel API refused to create %s because the hostname is taken, and no container of that "
                    "name is visible to this api_token: another account holds it. Choose another hostname "
                    "(the API said: %s)" % (hostname, failure.message),
                    failure.status,
                    failure.code,
                )
        raise failure

    def _created(self, data: Any, spec: Dict[str, Any]) -> Record:
        """The record a create answered, if it is the container that was asked for."""
        record = self._record(data, "POST", self.PATH)
        differs = [
            "%s %s" % (field, self._excerpt(record[field], 80))
            for field in ("hostname",) + tuple(name for name in sorted(spec) if name != "hostname")
            if record.get(field) != spec[field]
        ]
        if differs:
            raise self._unexpected(
                "POST",
                self.PATH,
                "a container that is not the one asked for (%s; asked for %s)"
                % (", ".join(differs), ", ".join("%s %s" % (name, spec[name]) for name in sorted(spec))),
            )
        return record

    def start(self, container_id: str) -> Record:
        return self._power(container_id, "start", repeatable=True)

    def stop(self, container_id: str) -> Record:
        return self._power(container_id, "stop", repeatable=True)

    def restart(self, container_id: str) -> Record:
        # A second restart is a second outage: only resent when the first surely never arrived.
        return self._power(container_id, "restart", repeatable=False)

    # helpers -----------------------------------------------------------------
    def _one_by_hostname(self, hostname: str) -> Optional[Record]:
        found = self.find(hostname)
        if len(found) > 1:
            raise AmbiguousHostname(hostname, found, self._scrubber)
        return found[0] if found else None

    def _power(self, container_id: str, action: str, repeatable: bool) -> Record:
        path = self._path(container_id, action)
        data = self.transport.request("POST", path, repeatable=repeatable, max_bytes=RECORD_REPLY_MAX)
        return self._record(data, "POST", path)

    def _path(self, container_id: str, action: Optional[str] = None) -> str:
        # Ids are checked for their UUID form before they get here; this is the last guard
        # against one that would turn into another endpoint's path.
        if not is_container_id(container_id):
            raise HzelError("Refusing to use %r as a container id: not a UUID" % self._excerpt(container_id, 60))
        return "%s/%s%s" % (self.PATH, container_id, "/" + action if action else "")

    def _record(self, value: Any, method: str, path: str, label: str = "data") -> Record:
        problem = _shape_problem(value, label, self._excerpt)
        if problem:
            raise self._unexpected(method, path, problem)
        return {field: value[field] for field in RECORD_FIELDS}

    def _unexpected(self, method: str, path: str, problem: str) -> HzelUnexpectedReply:
        return HzelUnexpectedReply(
            "The hzel API answered %s with something unexpected: %s" % (self.transport.where(method, path), problem)
        )


class AmbiguousHostname(HzelError):
    """More than one visible container holds one hostname (possible with an admin token)."""

    def __init__(self, hostname: str, records: List[Record], scrub: Optional[Scrubber] = None) -> None:
        ids = sorted(record["id"] for record in records)
        if scrub is not None:
            ids = [scrub.excerpt(container_id, 60) for container_id in ids]
        super().__init__(
            "%d containers visible to this api_token have the hostname %s (ids %s); refusing to guess which "
            "one is meant: address it by id" % (len(records), hostname, ", ".join(ids))
        )
        self.hostname = hostname


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_container_id(value: Any) -> bool:
    return isinstance(value, str) and _UUID.fullmatch(value) is not None
