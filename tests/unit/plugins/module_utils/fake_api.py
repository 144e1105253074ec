# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory stand-in for ContainersAPI that records every call and how many ran at once."""

from __future__ import annotations

import itertools
import threading
import time

from ansible_collections.hzel.cloud.plugins.module_utils._transport import HzelError, HzelNotFound

_ids = itertools.count(1)

# What the HTTP-level tests (responses) talk to: one base URL, and one record as the reference shows it.
API = "http://hzel.test"
LIST = API + "/api/v1/containers"
ID = "01942cf7-0000-7000-8000-000000000001"
RECORD = {
    "id": ID,
    "user_id": "01942cf6-0000-7000-8000-000000000001",
    "hostname": "web-1",
    "state": "running",
    "cpu_cores": 1,
    "memory_mb": 512,
    "disk_gb": 18,
    "created_at": "2026-03-28T00:00:00Z",
}


def uuid(number):
    return "01942cf7-0000-7000-8000-%012d" % number


def record(hostname="web-1", state="running", **spec):
    values = dict(cpu_cores=1, memory_mb=512, disk_gb=18)
    values.update(spec)
    return dict(
        id=uuid(abs(hash(hostname)) % 10**12),
        user_id=uuid(0),
        hostname=hostname,
        state=state,
        created_at="2026-11-29T00:00:00Z",
        **values,
    )


class FakeAPI:
    def __init__(self, containers=(), provisioning_polls=1, request_seconds=0.0, fail=None):
        self.containers = {c["id"]: dict(c) for c in containers}
        self.calls = []
        # how many reads a new container answers 'provisioning' before it settles
        self.provisioning_polls = provisioning_polls
        self.request_seconds = request_seconds
        # hostname -> HzelError raised by a POST about it
        self.fail = fail or {}
        self._polls = {}
        self._lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0

    @property
    def posts(self):
        return [call for call in self.calls if call[0] in ("create", "start", "stop", "restart")]

    def _enter(self, *call):
        with self._lock:
            self.calls.append(call)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if self.request_seconds:
            time.sleep(self.request_seconds)
        with self._lock:
            self.in_flight -= 1

    def _settle(self, container):
        if container["state"] == "provisioning":
            self._polls[container["id"]] = self._polls.get(container["id"], 0) + 1
            if self._polls[container["id"]] > self.provisioning_polls:
                container["state"] = "failed" if container["hostname"].startswith("fail-") else "running"
        return dict(container)

    def scrub(self, text):
        return text

    def list(self):
        self._enter("list")
        return [self._settle(c) for c in self.containers.values()]

    def get(self, container_id):
        self._enter("get", container_id)
        if container_id not in self.containers:
            raise HzelNotFound("Not found: GET /containers/%s" % container_id, 404, "NOT_FOUND")
        return self._settle(self.containers[container_id])

    def find(self, hostname):
        return [c for c in self.list() if c["hostname"] == hostname]

    def create(self, spec):
        self._enter("create", dict(spec))
        if spec["hostname"] in self.fail:
            raise self.fail[spec["hostname"]]
        created = dict(
            id=uuid(next(_ids) + 10**11),
            user_id=uuid(0),
            state="provisioning",
            created_at="2026-11-30T00:00:00Z",
            cpu_cores=1,
            memory_mb=512,
            disk_gb=18,
        )
        created.update(spec)
        self.containers[created["id"]] = created
        return dict(created)

    def _set(self, action, container_id, state):
        self._enter(action, container_id)
        container = self.containers[container_id]
        if container["hostname"] in self.fail:
            raise self.fail[container["hostname"]]
        container["state"] = state
        return dict(container)

    def start(self, container_id):
        return self._set("start", container_id, "running")

    def stop(self, container_id):
        return self._set("stop", container_id, "stopped")

    def restart(self, container_id):
        return self._set("restart", container_id, "running")

    def metrics(self, container_id):
        self._enter("metrics", container_id)
        found = self.containers[container_id]
        if found["hostname"] in self.fail:
            raise self.fail[found["hostname"]]
        return {
            "cpu_percent": 1.0,
            "memory_used_mb": 10,
            "memory_total_mb": found["memory_mb"],
            "disk_used_gb": 1.0,
            "disk_total_gb": found["disk_gb"],
        }


class FakeTime:
    """A clock that moves only when something sleeps, so waits cost no time in tests."""

    def __init__(self, now=0.0):
        self.now = now
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self):
        return self.now


def refused(message="The hzel API answered POST ... with HTTP 503 after 6 attempts"):
    return HzelError(message, 503)
