#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: hzel_container
short_description: Ensure a hzel container exists, with the given spec and power state
version_added: 1.0.0
description:
  - Creates a hzel container when none with the given O(hostname) exists, then brings it to the requested power state.
  - Idempotent; a run that changes nothing sends exactly one HTTP request (the lookup) and no POST.
  - A fleet of one over the same code as M(hzel.cloud.hzel_containers), which converges many containers in one task,
    concurrently and with one wait for all; prefer it to a loop over this module.
  - When another run creates the same hostname at the same moment, the API refuses the second create; the module then
    finds the container and adopts it (the usual spec and state rules apply), so concurrent runs converge without a
    duplicate. A hostname held by another account is a failure that says so.
  - The hzel API has no update and no delete endpoint, so this module never resizes nor removes a container, and
    there is no O(state=absent). When an existing container's O(cpu_cores), O(memory_mb) or O(disk_gb) differ from
    the parameters given, the module fails before changing anything and names each differing field.
author:
  - hzel.cloud contributors (@hzel)
extends_documentation_fragment:
  - hzel.cloud.hzel
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.ACTIONGROUPS
attributes:
  check_mode:
    support: full
    details: Predicts whether anything would change and the resulting record, and sends no POST request.
  diff_mode:
    support: full
    details: Shows the hostname, power state and spec before and after.
  platform:
    platforms: all
  action_group:
    membership:
      - hzel.cloud.hzel
options:
  hostname:
    description:
      - The container's hostname, unique on the platform; a DNS label (lowercase letters, digits and hyphens, at most
        63 characters).
      - Required unless O(id) is given.
      - The API has no lookup by hostname, so this reads the list of the caller's containers; with O(id) alone, only
        that container is read.
      - When more than one visible container has this hostname (possible with an admin token), the module fails
        naming their ids rather than acting on one of them.
    type: str
  id:
    description:
      - The UUID of an existing container. When given, the container is looked up by id, and one that is not found
        (or not owned by the caller) is a failure; nothing is created.
      - Checked for the UUID form before any request.
    type: str
  cpu_cores:
    description:
      - CPU cores of the container. Used on create (the API's default is 1); on an existing container, a different
        value is a failure.
    type: int
  memory_mb:
    description:
      - Memory of the container in MiB. Used on create (the API's default is 512); on an existing container, a
        different value is a failure.
    type: int
  disk_gb:
    description:
      - Disk of the container in GiB, from 18 to 32. Used on create (the API's default is 18); on an existing
        container, a different value is a failure.
    type: int
  state:
    description:
      - V(present) ensures the container exists; the power state of an existing one is left alone.
      - V(running) and V(stopped) ensure it exists and is in that power state; a new container is brought there.
      - V(restarted) ensures it exists and restarts it; it always reports a change.
    type: str
    choices: [present, running, stopped, restarted]
    default: present
  wait:
    description:
      - Wait until a provisioning container is running (or failed) before returning.
      - Polling starts at 0.1 seconds and backs off, so a short provisioning is seen within half a second.
      - A container that ends in state V(failed) is always a failure.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for provisioning to end before failing, naming the container and its last state.
      - The wait starts once the create (or power) request has been answered, so the time the request takes (bounded
        by O(api_timeout) and O(api_retries)) does not count; the container is polled at least once before it is
        declared still provisioning.
      - Greater than 0 and at most 86400.
    type: float
    default: 300
"""

EXAMPLES = r"""
- name: Ensure a running web container
  hzel.cloud.hzel_container:
    hostname: web-1
    cpu_cores: 2
    memory_mb: 1024
    state: running
    api_token: "{{ hzel_api_token }}"

- name: Stop a container found by its id, reading the token from HZEL_API_TOKEN
  hzel.cloud.hzel_container:
    id: 01942cf7-5b1e-7c3a-9d2e-8f1a2b3c4d5e
    state: stopped

- name: Restart a worker, sharing the API options through the action group
  module_defaults:
    group/hzel.cloud.hzel:
      api_url: http://127.0.0.1:8080
      api_token: "{{ hzel_api_token }}"
  block:
    - name: Restart the worker
      hzel.cloud.hzel_container:
        hostname: worker-1
        state: restarted
"""

RETURN = r"""
container:
  description:
    - The container as the API last showed it.
    - In check mode, the predicted record; the V(id), V(user_id) and V(created_at) of a container that would be created
      are V(null).
    - Also returned when the task fails after a change (for example a new container that ended V(failed)), as last
      seen, or V(null) when its create failed.
  returned: success, and on a failure after a change
  type: dict
  contains:
    id:
      description: The container's UUID.
      type: str
      sample: 01942cf7-5b1e-7c3a-9d2e-8f1a2b3c4d5e
    user_id:
      description: The UUID of the owner.
      type: str
      sample: 01942cf6-0a1b-7c2d-8e3f-405162738495
    hostname:
      description: The container's hostname.
      type: str
      sample: web-1
    state:
      description: The container's state.
      type: str
      sample: running
      choices: [provisioning, running, stopped, failed]
    cpu_cores:
      description: CPU cores.
      type: int
      sample: 2
    memory_mb:
      description: Memory in MiB.
      type: int
      sample: 1024
    disk_gb:
      description: Disk in GiB.
      type: int
      sample: 20
    created_at:
      description: When the container was created (ISO 8601, UTC).
      type: str
      sample: "2026-03-28T00:00:00Z"
problems:
  description:
    - Why the container cannot be converged (spec drift, state V(failed), an unknown id, an ambiguous hostname).
    - Nothing was changed.
  returned: when the module refused before any change
  type: dict
  sample: {"web-1": "container web-1 (01942cf7-...) differs from the requested spec: cpu_cores is 2, ..."}
error_code:
  description: The API's C(error.code) of a failure, where the API sent one (for example a refused token or create).
  returned: failure
  type: str
  sample: UNAUTHORIZED
status:
  description: The HTTP status of a failure, where there was one.
  returned: failure
  type: int
  sample: 401
"""

from ansible_collections.hzel.cloud.plugins.module_utils._executor import FleetExecutor, FleetFailed
from ansible_collections.hzel.cloud.plugins.module_utils._module import (
    converge_argument_spec,
    fleet_settings,
    hzel_module,
    run,
)
from ansible_collections.hzel.cloud.plugins.module_utils._plan import ITEM_KEYS, desired_fleet, diff_view


def main():
    argument_spec = converge_argument_spec()
    argument_spec.update(
        hostname=dict(type="str"),
        id=dict(type="str"),
        cpu_cores=dict(type="int"),
        memory_mb=dict(type="int"),
        disk_gb=dict(type="int"),
    )
    module = hzel_module(argument_spec, required_one_of=[("hostname", "id")], supports_check_mode=True)
    params = module.params

    def converge(client):
        # A fleet of one, over the same code as hzel.cloud.hzel_containers.
        desired = desired_fleet([{key: params[key] for key in ITEM_KEYS}], params["state"], labelled=False)
        try:
            outcome = FleetExecutor(client, fleet_settings(params), check_mode=module.check_mode).converge(desired)
        except FleetFailed as exc:
            exc.result = dict(container=exc.outcome.records[0])
            raise
        result = dict(changed=outcome.changed, container=outcome.records[0])
        if module._diff:
            result["diff"] = {"before": diff_view(outcome.steps[0].current), "after": diff_view(outcome.records[0])}
        return result

    run(module, converge)


if __name__ == "__main__":
    main()
