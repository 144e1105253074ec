# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory stand-in for HzelClient that records every call."""

from __future__ import annotations

import itertools

from ansible_collections.hzel.cloud.plugins.module_utils._client import HzelNotFound

_ids = itertools.count(1)


class FakeClient:
    def __init__(self, containers=(), provisioning_polls=0, ends="running"):
        self.containers = {c["id"]: dict(c) for c in containers}
        self.calls = []
        # how many GETs a new container answers 'provisioning' before it ends in `ends`
        self.provisioning_polls = provisioning_polls
        self.ends = ends
        self._polls = {}

    @property
    def posts(self):
        return [call for call in self.calls if call[0] in ("create", "start", "stop", "restart")]

    def list_containers(self):
        self.calls.append(("list",))
        return [dict(c) for c in self.containers.values()]

    def find_container(self, hostname):
        return next((c for c in self.list_containers() if c["hostname"] == hostname), None)

    def get_container(self, container_id):
        self.calls.append(("get", container_id))
        if container_id not in self.containers:
            raise HzelNotFound("Not found: GET /containers/%s" % container_id, 404, "NOT_FOUND")
        container = self.containers[container_id]
        if container["state"] == "provisioning":
            self._polls[container_id] = self._polls.get(container_id, 0) + 1
            if self._polls[container_id] > self.provisioning_polls:
                container["state"] = self.ends
        return dict(container)

    def create_container(self, spec):
        self.calls.append(("create", dict(spec)))
        record = dict(id="id-%d" % next(_ids), user_id="u1", state="provisioning", created_at="2026-11-30T00:00:00Z", **spec)
        self.containers[record["id"]] = record
        return dict(record)

    def _set(self, action, container_id, state):
        self.calls.append((action, container_id))
        self.containers[container_id]["state"] = state
        return dict(self.containers[container_id])

    def start_container(self, container_id):
        return self._set("start", container_id, "running")

    def stop_container(self, container_id):
        return self._set("stop", container_id, "stopped")

    def restart_container(self, container_id):
        return self._set("restart", container_id, "running")

    def get_metrics(self, container_id):
        self.calls.append(("metrics", container_id))
        record = self.containers[container_id]
        return {"cpu_percent": 1.0, "memory_used_mb": 10, "memory_total_mb": record["memory_mb"],
                "disk_used_gb": 1.0, "disk_total_gb": record["disk_gb"]}


def record(hostname="web-1", state="running", **spec):
    values = dict(cpu_cores=1, memory_mb=512, disk_gb=18)
    values.update(spec)
    return dict(id="id-%s" % hostname, user_id="u1", hostname=hostname, state=state, created_at="2026-11-29T00:00:00Z", **values)
