# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""What to create, start, stop or restart, and what the diff is.

Plain code over a client, the parameters and a check-mode flag: it runs the
same inside a module, a test or a script.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.hzel.cloud.plugins.module_utils._client import HzelError, HzelNotFound

HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SPEC_FIELDS = ("cpu_cores", "memory_mb", "disk_gb")
SPEC_DEFAULTS = {"cpu_cores": 1, "memory_mb": 512, "disk_gb": 18}
DISK_GB_RANGE = (18, 32)
CONTAINER_STATES = ("provisioning", "running", "stopped", "failed")
DIFF_FIELDS = ("hostname", "state") + SPEC_FIELDS

# Poll a provisioning container often at first, so that a short provisioning
# is seen within half a second of its end, then back off for long ones.
POLL_FIRST = 0.1
POLL_FACTOR = 1.5
POLL_SHORT_CAP = 0.4
POLL_LONG_CAP = 2.0
POLL_SHORT_PERIOD = 10.0


class InvalidParameters(HzelError):
    pass


class SpecMismatch(HzelError):
    """An existing container differs from the parameters; the API cannot update or delete."""


class ContainerFailed(HzelError):
    pass


class WaitTimeout(HzelError):
    pass


def validate_hostname(hostname, option="hostname"):
    if not isinstance(hostname, str) or not HOSTNAME_RE.match(hostname):
        raise InvalidParameters(
            "%s must be a DNS label: lowercase letters, digits and hyphens, 1 to 63 characters, "
            "not starting or ending with a hyphen (got %r)" % (option, hostname))


def validate_container_params(params):
    """Refuse bad parameters before any request is sent."""
    if not params.get("hostname") and not params.get("id"):
        raise InvalidParameters("one of hostname or id is required")
    if params.get("hostname") is not None:
        validate_hostname(params["hostname"])
    if params.get("id") is not None and not str(params["id"]).strip():
        raise InvalidParameters("id must not be empty")
    for field in ("cpu_cores", "memory_mb"):
        value = params.get(field)
        if value is not None and value < 1:
            raise InvalidParameters("%s must be a positive integer (got %r)" % (field, value))
    disk = params.get("disk_gb")
    if disk is not None and not DISK_GB_RANGE[0] <= disk <= DISK_GB_RANGE[1]:
        raise InvalidParameters("disk_gb must be between %d and %d (got %r)" % (DISK_GB_RANGE + (disk,)))
    if params.get("wait_timeout") is not None and params["wait_timeout"] <= 0:
        raise InvalidParameters("wait_timeout must be greater than 0 (got %r)" % params["wait_timeout"])


def diff_view(container):
    if container is None:
        return {}
    return {field: container.get(field) for field in DIFF_FIELDS}


def describe(container):
    return "%s (%s)" % (container.get("hostname"), container.get("id"))


class ContainerResult:
    def __init__(self, changed, container, before, after):
        self.changed = changed
        self.container = container
        self.diff = {"before": before, "after": after}


class ContainerManager:
    """Brings one container to the state its parameters describe."""

    def __init__(self, client, params, check_mode=False, sleep=time.sleep, clock=time.monotonic):
        self.client = client
        self.params = params
        self.check_mode = check_mode
        self._sleep = sleep
        self._clock = clock

    @property
    def desired_state(self):
        return self.params.get("state") or "present"

    def ensure(self):
        validate_container_params(self.params)
        current = self.lookup()
        before = diff_view(current)
        if current is None:
            container = self.create()
            changed = True
        else:
            self.refuse_spec_drift(current)
            container, changed = self.converge_power(current)
        return ContainerResult(changed, container, before, diff_view(container))

    def lookup(self):
        if self.params.get("id"):
            try:
                container = self.client.get_container(self.params["id"])
            except HzelNotFound:
                raise HzelNotFound("Container id %s was not found, or it is not visible to this api_token" % self.params["id"])
            hostname = self.params.get("hostname")
            if hostname and container.get("hostname") != hostname:
                raise InvalidParameters("Container id %s has hostname %r, not %r; the API cannot rename a container" % (
                    self.params["id"], container.get("hostname"), hostname))
            return container
        return self.client.find_container(self.params["hostname"])

    def requested_spec(self):
        return {field: self.params[field] for field in SPEC_FIELDS if self.params.get(field) is not None}

    def refuse_spec_drift(self, current):
        differences = [
            "%s is %s, the parameters ask for %s" % (field, current.get(field), wanted)
            for field, wanted in sorted(self.requested_spec().items())
            if current.get(field) != wanted
        ]
        if differences:
            raise SpecMismatch(
                "Container %s differs from the requested spec: %s. The hzel API cannot resize or delete a "
                "container, so nothing was changed; align the parameters with the container, or replace it "
                "under a new hostname." % (describe(current), "; ".join(differences)))

    def create(self):
        spec = dict(SPEC_DEFAULTS, **self.requested_spec())
        spec["hostname"] = self.params["hostname"]
        if self.check_mode:
            return dict(
                {"id": None, "user_id": None, "created_at": None},
                state=self.predicted_state_of_new(), **spec)
        container = self.client.create_container(spec)
        container, _changed = self.converge_power(container)
        return container

    def predicted_state_of_new(self):
        if self.desired_state == "stopped":
            return "stopped"
        if self.desired_state == "present" and not self.params.get("wait", True):
            return "provisioning"
        return "running"

    def converge_power(self, container):
        """Apply the power state; returns the container as last seen and whether it changed."""
        state = self.desired_state
        wait = self.params.get("wait", True)
        if container["state"] == "provisioning" and (wait or state != "present"):
            if self.check_mode:
                container = dict(container, state="running")
            elif wait:
                container = self.wait_until_settled(container)
        if container["state"] == "failed":
            raise ContainerFailed("Container %s is in state 'failed' (its provisioning failed); the hzel API cannot "
                                  "repair or delete it, so it must be replaced under a new hostname" % describe(container))
        action = None
        if state == "restarted":
            action = self.client.restart_container
        elif state == "running" and container["state"] not in ("running", "provisioning"):
            action = self.client.start_container
        elif state == "stopped" and container["state"] != "stopped":
            action = self.client.stop_container
        if action is None:
            return container, False
        if self.check_mode:
            return dict(container, state="stopped" if state == "stopped" else "running"), True
        return action(container["id"]), True

    def wait_until_settled(self, container):
        """Poll while the container is provisioning; fail on 'failed' or at wait_timeout."""
        timeout = float(self.params.get("wait_timeout") or 300)
        started = self._clock()
        delay = POLL_FIRST
        while container["state"] == "provisioning":
            elapsed = self._clock() - started
            if elapsed >= timeout:
                raise WaitTimeout("Container %s was still '%s' after waiting %ss (wait_timeout)" % (
                    describe(container), container["state"], int(timeout) if timeout == int(timeout) else timeout))
            self._sleep(min(delay, timeout - elapsed))
            container = self.client.get_container(container["id"])
            cap = POLL_SHORT_CAP if self._clock() - started < POLL_SHORT_PERIOD else POLL_LONG_CAP
            delay = min(delay * POLL_FACTOR, cap)
        if container["state"] == "failed":
            raise ContainerFailed("Container %s ended in state 'failed' while provisioning" % describe(container))
        return container


def select_containers(client, container_id=None, hostname=None, states=None):
    """Containers that match every filter given; an unknown id gives an empty list."""
    if container_id:
        try:
            containers = [client.get_container(container_id)]
        except HzelNotFound:
            return []
    else:
        containers = client.list_containers()
    return [
        container for container in containers
        if (not hostname or container.get("hostname") == hostname)
        and (not states or container.get("state") in states)
    ]


def attach_metrics(client, containers, workers=8):
    """Fetch every container's metrics concurrently, in a bounded pool.

    Each fetch goes through the client's retries, so a 429 slows the pool down
    rather than failing it. Returns new dicts with a ``metrics`` key.
    """
    if not containers:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(containers)))) as pool:
        metrics = list(pool.map(lambda container: client.get_metrics(container["id"]), containers))
    return [dict(container, metrics=item) for container, item in zip(containers, metrics)]
