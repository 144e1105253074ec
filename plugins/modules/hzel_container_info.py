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
  - "B(A count group.) With O(hostname_pattern), reads the group of containers whose hostnames the pattern renders
    (for example V(web-{index})), as M(hzel.cloud.hzel_containers) counts it with
    O(hzel.cloud.hzel_containers#module:count): RV(containers) holds only the group's members, and RV(group) names
    them by state and tells how many count."
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
      - Mutually exclusive with O(hostname_pattern).
    type: str
  hostname:
    description:
      - Only the container with this hostname.
      - Mutually exclusive with O(hostname_pattern).
    type: str
  hostname_pattern:
    version_added: 1.1.0
    description:
      - "Only the members of this count group, and the group itself as RV(group): the containers visible to the
        token whose hostname the pattern renders, in full, for some index. The same pattern and the same rule as
        O(hzel.cloud.hzel_containers#module:hostname_pattern): with V(web-{index}), V(web-1) and V(web-12) are
        members; V(web-01), V(web-1a), V(webx-1) and V(db-1) are not."
      - A literal prefix that begins with a lowercase letter (lowercase letters, digits and hyphens), exactly one
        placeholder V({index}) (or V({index:0Nd}) for zero padding to N digits), and an optional literal suffix;
        checked before any request.
      - RV(group) is always the whole group; O(state) filters only RV(containers).
      - An admin token sees every user's containers, so its group holds every user's members, as with
        M(hzel.cloud.hzel_containers).
    type: str
  index_start:
    version_added: 1.1.0
    description:
      - With O(hostname_pattern), the lowest index that M(hzel.cloud.hzel_containers) gives a new member, from 0 to
        1000000 (checked before any request). As there, members of lower indexes still belong to the group and
        count, so it does not change RV(group); it lets one set of options describe a group to both modules.
      - Only with O(hostname_pattern).
    type: int
    default: 1
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

- name: Read the web group, web-1, web-2, ...
  hzel.cloud.hzel_container_info:
    hostname_pattern: web-{index}
  register: web

- name: Say how many web members run, and which have failed
  ansible.builtin.debug:
    msg: "{{ web.group.count }} running or provisioning; failed: {{ web.group.failed | join(', ') or 'none' }}"
"""

RETURN = r"""
containers:
  description:
    - The containers that match, ordered by hostname (then id).
    - With O(hostname_pattern), only the group's members (those in O(state), if given), ordered by index (then id).
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
group:
  version_added: 1.1.0
  description:
    - With O(hostname_pattern), the whole group as read (whatever O(state) selects), by the rule by which
      M(hzel.cloud.hzel_containers) counts it.
    - Each list holds hostnames, sorted by index. A hostname that two visible containers hold (an admin token
      may see two) is listed twice; M(hzel.cloud.hzel_containers) refuses to count such a group.
  returned: when O(hostname_pattern) is given
  type: dict
  contains:
    hostname_pattern:
      description: The pattern, as given.
      type: str
      sample: web-{index}
    members:
      description: The hostnames of every member, whatever its state.
      type: list
      elements: str
      sample: [web-1, web-2, web-3, web-4, web-5]
    active:
      description: The hostnames of the members that are V(running) or V(provisioning); these count.
      type: list
      elements: str
      sample: [web-1, web-2, web-3]
    stopped:
      description: The hostnames of the stopped members.
      type: list
      elements: str
      sample: [web-4]
    failed:
      description:
        - The hostnames of the members in state V(failed). They are not counted and their hostnames stay taken (the
          hzel API cannot repair or delete a container).
      type: list
      elements: str
      sample: [web-5]
    count:
      description:
        - How many members count, the length of RV(group.active); the number that
          O(hzel.cloud.hzel_containers#module:count) would find.
      type: int
      sample: 3
"""

from ansible_collections.hzel.cloud.plugins.module_utils._containers import CONTAINER_STATES, is_container_id
from ansible_collections.hzel.cloud.plugins.module_utils._executor import fetch_metrics
from ansible_collections.hzel.cloud.plugins.module_utils._module import hzel_module, run
from ansible_collections.hzel.cloud.plugins.module_utils._options import InvalidParameters, check_number
from ansible_collections.hzel.cloud.plugins.module_utils._scale import (
    INDEX_MAX,
    INDEX_START_DEFAULT,
    describe_group,
    group_members,
    parse_pattern,
)
from ansible_collections.hzel.cloud.plugins.module_utils._transport import HzelNotFound

METRICS_WORKERS = 8


def main():
    module = hzel_module(
        argument_spec=dict(
            id=dict(type="str"),
            hostname=dict(type="str"),
            state=dict(type="list", elements="str", choices=list(CONTAINER_STATES)),
            include_metrics=dict(type="bool", default=False),
            hostname_pattern=dict(type="str"),
            index_start=dict(type="int", default=INDEX_START_DEFAULT),
        ),
        supports_check_mode=True,
        mutually_exclusive=[("hostname_pattern", "id"), ("hostname_pattern", "hostname")],
    )
    params = module.params

    def read(client):
        if params["id"] is not None and not is_container_id(params["id"]):
            raise InvalidParameters(
                "id must be a container UUID such as 01942cf7-5b1e-7c3a-9d2e-8f1a2b3c4d5e (got %r)" % params["id"][:80]
            )
        pattern = None
        if params["hostname_pattern"] is not None:
            pattern = parse_pattern(params["hostname_pattern"])
            check_number("index_start", params["index_start"], 0, INDEX_MAX, integer=True, low_inclusive=True)
        if params["id"]:
            try:
                containers = [client.get(params["id"])]
            except HzelNotFound:
                containers = []
        else:
            containers = client.list()
        result = dict(changed=False)
        if pattern is not None:
            result["group"] = describe_group(pattern, containers)
            # Ordered by index, as the group's lists are.
            containers = [record for _index, record in group_members(pattern, containers)]
        containers = [
            container
            for container in containers
            if (not params["hostname"] or container["hostname"] == params["hostname"])
            and (not params["state"] or container["state"] in params["state"])
        ]
        if pattern is None:
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
        result["containers"] = containers
        return result

    run(module, read, pool_size=METRICS_WORKERS)


if __name__ == "__main__":
    main()
