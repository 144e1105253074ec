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
from typing import Any, Dict, List, Optional

from ansible_collections.hzel.cloud.plugins.module_utils._transport import (
    HzelBadRequest,
    HzelError,
    HzelTransport,
    HzelUnexpectedReply,
    excerpt,
)

RECORD_FIELDS = ("id", "user_id", "hostname", "state", "cpu_cores", "memory_mb", "disk_gb", "created_at")
CONTAINER_STATES = ("provisioning", "running", "stopped", "failed")
METRICS_FIELDS = ("cpu_percent", "memory_used_mb", "memory_total_mb", "disk_used_gb", "disk_total_gb")
_STRING_FIELDS = ("id", "user_id", "hostname", "state", "created_at")
_INTEGER_FIELDS = ("cpu_cores", "memory_mb", "disk_gb")
# What the API says when a hostname is taken; the reference names no code for it.
_TAKEN = re.compile(r"taken|in use|already|exists|duplicate|conflict", re.IGNORECASE)

Record = Dict[str, Any]


class HostnameHeldElsewhere(HzelBadRequest):
    """The API refused a create because another account holds the hostname."""


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shape_problem(value: Any, label: str) -> Optional[str]:
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

    def scrub(self, text: Any) -> str:
        return self.transport.scrub(text)

    # reading ---------------------------------------------------------------
    def list(self) -> List[Record]:
        data = self.transport.request("GET", self.PATH)
        if not isinstance(data, list):
            raise self._unexpected("GET", self.PATH, "data is %s, not a list" % _kind(data))
        return [self._record(item, "GET", self.PATH, "data[%d]" % index) for index, item in enumerate(data)]

    def get(self, container_id: str) -> Record:
        path = self._path(container_id)
        return self._record(self.transport.request("GET", path), "GET", path)

    def find(self, hostname: str) -> List[Record]:
        """Every visible container with this hostname (an admin may see more than one)."""
        return [record for record in self.list() if record["hostname"] == hostname]

    def metrics(self, container_id: str) -> Dict[str, Any]:
        path = self._path(container_id, "metrics")
        data = self.transport.request("GET", path)
        if not isinstance(data, dict):
            raise self._unexpected("GET", path, "data is %s, not an object" % _kind(data))
        for field in METRICS_FIELDS:
            if not _is_number(data.get(field)):
                raise self._unexpected("GET", path, "data.%s is %s, not a number" % (field, _kind(data.get(field))))
        return {field: data[field] for field in METRICS_FIELDS}

    # changing --------------------------------------------------------------
    def create(self, spec: Dict[str, Any]) -> Record:
        """Create a container, never two, and adopt one that a concurrent run created.

        The API has no idempotency key: after a reply that leaves the outcome open
        (a lost reply, a timeout, a 5xx) the hostname is looked up before the
        create is sent again. When the API refuses the create as a bad request
        and the hostname turns out to be visible to the caller, a concurrent run
        created it: that container is returned, marked ``adopted``.
        """
        hostname = spec["hostname"]

        def already_created() -> Optional[Record]:
            return self._one_by_hostname(hostname)

        try:
            data = self.transport.request("POST", self.PATH, body=spec, resolve_open_outcome=already_created)
        except HzelBadRequest as exc:
            failure: HzelError = exc
            refused = True
        except HzelError as exc:
            failure = exc
            refused = False
        else:
            return self._record(data, "POST", self.PATH)
        if refused or (failure.status or 0) >= 500:
            found = self._one_by_hostname(hostname)
            if found is not None:
                return dict(found, adopted=True) if refused else found
            if refused and _TAKEN.search(failure.message):
                raise HostnameHeldElsewhere(
                    "The hzel API refused to create %s because the hostname is taken, and no container of that "
                    "name is visible to this api_token: another account holds it. Choose another hostname "
                    "(the API said: %s)" % (hostname, failure.message),
                    failure.status,
                    failure.code,
                )
        raise failure

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
            raise AmbiguousHostname(hostname, found)
        return found[0] if found else None

    def _power(self, container_id: str, action: str, repeatable: bool) -> Record:
        path = self._path(container_id, action)
        return self._record(self.transport.request("POST", path, repeatable=repeatable), "POST", path)

    def _path(self, container_id: str, action: Optional[str] = None) -> str:
        # Ids are checked for their UUID form before they get here; this is the last guard
        # against one that would turn into another endpoint's path.
        if not is_container_id(container_id):
            raise HzelError("Refusing to use %r as a container id: not a UUID" % excerpt(container_id, 60))
        return "%s/%s%s" % (self.PATH, container_id, "/" + action if action else "")

    def _record(self, value: Any, method: str, path: str, label: str = "data") -> Record:
        problem = _shape_problem(value, label)
        if problem:
            raise self._unexpected(method, path, problem)
        return {field: value[field] for field in RECORD_FIELDS}

    def _unexpected(self, method: str, path: str, problem: str) -> HzelUnexpectedReply:
        return HzelUnexpectedReply(
            "The hzel API answered %s with something unexpected: %s" % (self.transport.where(method, path), problem)
        )


class AmbiguousHostname(HzelError):
    """More than one visible container holds one hostname (possible with an admin token)."""

    def __init__(self, hostname: str, records: List[Record]) -> None:
        super().__init__(
            "%d containers visible to this api_token have the hostname %s (ids %s); refusing to guess which "
            "one is meant: address it by id" % (len(records), hostname, ", ".join(sorted(r["id"] for r in records)))
        )
        self.hostname = hostname


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_container_id(value: Any) -> bool:
    return isinstance(value, str) and _UUID.fullmatch(value) is not None
