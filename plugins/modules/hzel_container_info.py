#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: hzel_container_info
short_description: Read hzel containers and their metrics
version_added: 1.0.0
description:
  - Lists the hzel containers visible to the API token (an admin token sees every container), optionally only those
    matching an id, a hostname or a set of states, and optionally with their current CPU, memory and disk use.
  - Changes nothing.
author:
  - hzel.cloud contributors (@hzel)
extends_documentation_fragment:
  - hzel.cloud.hzel
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.ACTIONGROUPS
attributes:
  check_mode:
    support: full
    details: The module only reads, so it runs unchanged in check mode.
  diff_mode:
    support: N/A
    details: The module changes nothing.
  platform:
    platforms: all
  action_group:
    membership:
      - hzel.cloud.hzel
options:
  id:
    description:
      - Only the container with this UUID. One that is not found (or not owned by the caller) gives an empty list.
      - Checked for the UUID form before any request.
    type: str
  hostname:
    description:
      - Only the container with this hostname.
    type: str
  state:
    description:
      - Only containers in one of these states.
    type: list
    elements: str
    choices: [provisioning, running, stopped, failed]
  include_metrics:
    description:
      - Add each container's current utilisation as RV(containers[].metrics), fetched concurrently.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Read every container
  hzel.cloud.hzel_container_info:
    api_token: "{{ hzel_api_token }}"
  register: fleet

- name: Read the running containers with their metrics
  hzel.cloud.hzel_container_info:
    state: [running]
    include_metrics: true
  register: running

- name: Show the busiest container
  ansible.builtin.debug:
    msg: "{{ (running.containers | sort(attribute='metrics.cpu_percent') | last).hostname }}"
  when: running.containers | length > 0
"""

RETURN = r"""
containers:
  description: The containers that match, ordered by hostname (then id).
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
    cpu_cores:
      description: CPU cores.
      type: int
      sample: 1
    memory_mb:
      description: Memory in MiB.
      type: int
      sample: 512
    disk_gb:
      description: Disk in GiB.
      type: int
      sample: 18
    created_at:
      description: When the container was created (ISO 8601, UTC).
      type: str
      sample: "2026-03-28T00:00:00Z"
    metrics:
      description:
        - Current utilisation; only with O(include_metrics=true).
        - V(null) for a container whose metrics could not be read; the module then warns, naming it, and the other
          containers keep theirs.
      returned: when O(include_metrics=true)
      type: dict
      contains:
        cpu_percent:
          description: CPU use in percent.
          type: float
          sample: 12.4
        memory_used_mb:
          description: Memory in use, in MiB.
          type: int
          sample: 203
        memory_total_mb:
          description: Memory of the container, in MiB.
          type: int
          sample: 512
        disk_used_gb:
          description: Disk in use, in GiB.
          type: float
          sample: 4.1
        disk_total_gb:
          description: Disk of the container, in GiB.
          type: int
          sample: 18
"""

from ansible_collections.hzel.cloud.plugins.module_utils._containers import CONTAINER_STATES, is_container_id
from ansible_collections.hzel.cloud.plugins.module_utils._executor import fetch_metrics
from ansible_collections.hzel.cloud.plugins.module_utils._module import hzel_module, run
from ansible_collections.hzel.cloud.plugins.module_utils._options import InvalidParameters
from ansible_collections.hzel.cloud.plugins.module_utils._transport import HzelNotFound

METRICS_WORKERS = 8


def main():
    module = hzel_module(
        argument_spec=dict(
            id=dict(type="str"),
            hostname=dict(type="str"),
            state=dict(type="list", elements="str", choices=list(CONTAINER_STATES)),
            include_metrics=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params

    def read(client):
        if params["id"] is not None and not is_container_id(params["id"]):
            raise InvalidParameters(
                "id must be a container UUID such as 01942cf7-5b1e-7c3a-9d2e-8f1a2b3c4d5e (got %r)" % params["id"][:80]
            )
        if params["id"]:
            try:
                containers = [client.get(params["id"])]
            except HzelNotFound:
                containers = []
        else:
            containers = client.list()
        containers = [
            container
            for container in containers
            if (not params["hostname"] or container["hostname"] == params["hostname"])
            and (not params["state"] or container["state"] in params["state"])
        ]
        containers.sort(key=lambda container: (container["hostname"], container["id"]))
        if params["include_metrics"]:
            containers, failures = fetch_metrics(client, containers, METRICS_WORKERS)
            if failures:
                module.warn(
                    "No metrics for %d of %d containers (their metrics are null): %s"
                    % (
                        len(failures),
                        len(containers),
                        client.scrub("; ".join("%s: %s" % item for item in sorted(failures.items())[:5])),
                    )
                )
        return dict(changed=False, containers=containers)

    run(module, read, pool_size=METRICS_WORKERS)


if __name__ == "__main__":
    main()
