#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: hzel_containers
short_description: Converge a whole fleet of hzel containers in one task
version_added: 0.2.0
description:
  - Ensures that every container of O(containers) exists with its spec and power state, in one task.
  - "B(Planned first, all or nothing.) Every item is checked before any request (types, ranges, DNS-label
    hostnames, UUID ids, a hostname or id named twice). Then the containers are read with one request and a plan is
    made. If any item cannot be converged (an existing container whose O(containers[].cpu_cores),
    O(containers[].memory_mb) or O(containers[].disk_gb) differ, a container in state V(failed), an id that is not
    found, a hostname that more than one visible container holds), the task fails before any change, naming every
    such item and field."
  - "B(Applied concurrently.) Creates and power actions run at most O(parallelism) at a time. An HTTP 429 holds the
    whole pool for as long as C(Retry-After) asks, and fails no item. A create is never resent blindly, so no
    duplicate appears."
  - "B(One wait for all.) New containers are waited for together: each poll round is one request, whatever the size
    of the fleet, until O(wait_timeout) for the fleet as a whole."
  - "B(Partial failure.) When a container ends V(failed) or a request fails for good, the other items still
    converge; the task fails naming each failed hostname and why, and still returns RV(containers) and
    RV(actions) for everything that was done."
  - An unchanged fleet costs exactly one HTTP request, whatever its size.
  - Use M(hzel.cloud.hzel_container) for one container and this module for many; both run the same code.
author:
  - hzel.cloud contributors (@hzel)
extends_documentation_fragment:
  - hzel.cloud.hzel
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.ACTIONGROUPS
attributes:
  check_mode:
    support: full
    details: Returns the plan (predicted records and actions) and sends no POST request.
  diff_mode:
    support: full
    details: Shows the hostname, power state and spec before and after, for the containers that change only.
  platform:
    platforms: all
  action_group:
    membership:
      - hzel.cloud.hzel
options:
  containers:
    description:
      - The containers of the fleet, each named by O(containers[].hostname) or O(containers[].id).
      - A container may appear only once, by hostname or by id.
    type: list
    elements: dict
    required: true
    suboptions:
      hostname:
        description:
          - The container's hostname, unique on the platform; a DNS label (lowercase letters, digits and hyphens, at
            most 63 characters).
          - Required unless O(containers[].id) is given.
        type: str
      id:
        description:
          - The UUID of an existing container; one that is not found (or not visible to the token) refuses the plan.
        type: str
      cpu_cores:
        description: CPU cores; used on create, and compared with an existing container.
        type: int
      memory_mb:
        description: Memory in MiB; used on create, and compared with an existing container.
        type: int
      disk_gb:
        description: Disk in GiB, from 18 to 32; used on create, and compared with an existing container.
        type: int
      state:
        description: The state of this container; defaults to O(state).
        type: str
        choices: [present, running, stopped, restarted]
  state:
    description:
      - The state of every item that does not name one.
      - V(present) ensures the container exists; the power state of an existing one is left alone.
      - V(running) and V(stopped) ensure it exists and is in that power state.
      - V(restarted) restarts an existing container (always a change); a new container is only created.
    type: str
    choices: [present, running, stopped, restarted]
    default: present
  wait:
    description:
      - Wait until the provisioning containers of the fleet are running (or failed) before returning.
      - A container that ends in state V(failed) is always a failure.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds, for the fleet as a whole, from the start of the changes until every provisioning container has
        settled; those still provisioning then are failures. Greater than 0 and at most 86400.
    type: float
    default: 300
  parallelism:
    description:
      - How many requests are in flight at once; from 1 to 64.
    type: int
    default: 8
"""

EXAMPLES = r"""
- name: Converge the web tier in one task
  hzel.cloud.hzel_containers:
    api_token: "{{ hzel_api_token }}"
    state: running
    containers:
      - hostname: web-1
        cpu_cores: 2
        memory_mb: 1024
      - hostname: web-2
        cpu_cores: 2
        memory_mb: 1024
      - hostname: batch-1
        state: stopped

- name: Fifty workers, twelve requests at a time
  hzel.cloud.hzel_containers:
    containers: >-
      {{ query('ansible.builtin.sequence', 'start=1 end=50 format=worker-%02d')
         | map('ansible.builtin.to_json') | map('regex_replace', '^(.*)$', '{"hostname": \1}')
         | map('ansible.builtin.from_json') | list }}
    parallelism: 12
    wait_timeout: 600

- name: Restart the containers of an inventory group, by id, in one task on the controller
  hzel.cloud.hzel_containers:
    containers: >-
      {{ groups['web'] | map('extract', hostvars, 'hzel_id') | map('ansible.builtin.to_json')
         | map('regex_replace', '^(.*)$', '{"id": \1}') | map('ansible.builtin.from_json') | list }}
    state: restarted
  run_once: true
  delegate_to: localhost

- name: Show the plan without changing anything
  hzel.cloud.hzel_containers:
    containers:
      - hostname: db-1
        memory_mb: 4096
  check_mode: true
  diff: true
  register: plan

- name: Print what would be done
  ansible.builtin.debug:
    var: plan.actions
"""

RETURN = r"""
containers:
  description:
    - The records of the containers, in the order of O(containers), as the API last showed them.
    - In check mode, the predicted records; the V(id), V(user_id) and V(created_at) of a container that would be
      created are V(null).
    - On a partial failure, V(null) for a container whose create failed.
  returned: always
  type: list
  elements: dict
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
actions:
  description:
    - What was done to each container, by hostname (in check mode, what would be done).
    - V(create) for a new container (then brought to its state), V(start), V(stop), V(restart), or V(none).
    - A container that another run created at the same moment is adopted, and shows what it needed after that.
  returned: always
  type: dict
  sample: {"web-1": "create", "web-2": "none", "batch-1": "stop"}
failures:
  description: Why each container that did not converge failed, by hostname.
  returned: when some containers did not converge
  type: dict
  sample: {"fail-1": "Container fail-1 (01942cf7-...) ended in state 'failed' while provisioning"}
problems:
  description: Why the plan was refused, by item (C(containers[N])); nothing was changed.
  returned: when the plan was refused
  type: dict
  sample: {"containers[0]": "container web-1 (01942cf7-...) differs from the requested spec: cpu_cores is 2, ..."}
error_code:
  description: The API's C(error.code) of a failure, where the API sent one.
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
    fleet_result,
    fleet_settings,
    hzel_module,
    run,
)
from ansible_collections.hzel.cloud.plugins.module_utils._options import DESIRED_STATES, PARALLELISM_DEFAULT
from ansible_collections.hzel.cloud.plugins.module_utils._plan import desired_fleet


def main():
    argument_spec = converge_argument_spec()
    argument_spec.update(
        containers=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                hostname=dict(type="str"),
                id=dict(type="str"),
                cpu_cores=dict(type="int"),
                memory_mb=dict(type="int"),
                disk_gb=dict(type="int"),
                state=dict(type="str", choices=list(DESIRED_STATES)),
            ),
        ),
        parallelism=dict(type="int", default=PARALLELISM_DEFAULT),
    )
    module = hzel_module(argument_spec, supports_check_mode=True)
    params = module.params

    def converge(client):
        desired = desired_fleet(params["containers"], params["state"])
        try:
            outcome = FleetExecutor(client, fleet_settings(params), check_mode=module.check_mode).converge(desired)
        except FleetFailed as exc:
            exc.result = fleet_result(exc.outcome)
            raise
        result = fleet_result(outcome)
        if module._diff:
            result["diff"] = outcome.diffs()
        return result

    run(module, converge, pool_size=params["parallelism"])


if __name__ == "__main__":
    main()
