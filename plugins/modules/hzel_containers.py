#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: hzel_containers
short_description: Converge a whole fleet of hzel containers in one task
version_added: 1.0.0
description:
  - Ensures that every container of O(containers) exists with its spec and power state, in one task.
  - "B(Scale by count.) Or brings the group of containers whose hostnames O(hostname_pattern) renders (for example
    V(web-{index})) to O(count) running members: it starts stopped members and creates new ones to scale up, and
    stops the highest indexes to scale down (the hzel API has no delete). Nothing but the group is ever selected;
    see O(count) for the rules."
  - "B(Planned first, all or nothing.) Every item is checked before any request (types, ranges, DNS-label
    hostnames, UUID ids, a hostname or id named twice). Then the containers are read with one request and a plan is
    made. If any item cannot be converged (an existing container whose O(containers[].cpu_cores),
    O(containers[].memory_mb) or O(containers[].disk_gb) differ, a container in state V(failed), an id that is not
    found, a hostname that more than one visible container holds), the task fails before any change, naming every
    such item and field."
  - "B(Applied concurrently.) Creates and power actions run at most O(parallelism) at a time. An HTTP 429 makes
    only the request that got it wait for as long as C(Retry-After) asks (at least 1 second, at most 60) and then
    resend it, spending no O(api_retries), while the other requests go on. Only when 429s show a real limit (four
    answers 429 in a row across the requests of the task, no other answer between them) does every request hold
    for C(Retry-After), then go out at the pace the API let through. A request still answered 429 after 120 seconds
    (or 100 answers 429) fails its item only, and the other items still converge. A create is never resent
    blindly, so no duplicate appears."
  - "B(One wait for all.) New containers are waited for together, once every create and power request has been
    answered: each poll round is one request, whatever the size of the fleet, for at most O(wait_timeout) for the
    fleet as a whole."
  - "B(Partial failure.) When a container ends V(failed) or a request fails for good (or on a reply that cannot be
    read), the other items still converge; the task fails naming each failed item and why, and still returns
    RV(containers), RV(actions), RV(failures) and RV(failure_details) for everything that was done."
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
    details: Returns the plan (predicted records, actions and group) and sends no POST request.
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
      - One of O(containers) and O(count) is required; they are mutually exclusive.
    type: list
    elements: dict
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
  count:
    description:
      - "Scale by count: how many members of the group of O(hostname_pattern) should run, from 0 to 1000. Requires
        O(hostname_pattern); mutually exclusive with O(containers)."
      - "B(The group) is exactly the containers visible to the token whose hostname O(hostname_pattern) renders, in
        full, for some index: with V(web-{index}), V(web-1) and V(web-12) are members; V(web-01), V(web-1a),
        V(webx-1) and V(db-1) are not, and are never read further, started or stopped. A hostname that more than
        one visible container holds refuses the task."
      - "B(Counting.) Members in state V(running) or V(provisioning) count. To scale up, stopped members are
        started first, lowest index first, then new containers are created at the lowest free indexes from
        O(index_start). To scale down, the running or provisioning members of the highest indexes are stopped.
        V(0) stops every member and creates nothing."
      - "B(Failed members) (state V(failed)) are neither counted nor reused: their hostnames stay taken, a warning
        names them and RV(group.failed) lists them. The hzel API cannot repair or delete them. A member that is
        being stopped to scale down and ends V(failed) instead (its provisioning failed) no longer counts either,
        which is what its stop was for: it does not fail the task; a warning names it and RV(left_failed) and
        RV(group.failed) list it."
      - "B(Spec.) O(cpu_cores), O(memory_mb) and O(disk_gb) are the spec of new members and are compared with every
        member that is kept running or started: a difference refuses the task before any change, naming each
        member and field. Members that are stopped are not compared."
      - "B(Spec left out.) For each of O(cpu_cores), O(memory_mb) and O(disk_gb) that is not given, new members take
        the value that the existing members share (those the count keeps running or starts, which, when members are
        created, is every member that is not V(failed)); nothing is compared for that field. If those members
        differ in it, a task that would create members is refused before any change, naming the members' values
        and the options to give. Only a group without such members (empty, or only V(failed) ones) creates at the
        API's defaults (1 CPU core, 512 MiB, 18 GiB)."
      - "B(Visibility.) A regular token sees only its own containers, so the group is that user's. An admin token
        sees every user's containers, so its group holds every user's matching containers, and it counts, starts
        and stops them all: scale a user's group with that user's token. Hostnames are unique on the whole
        platform, so a free index whose hostname a container of another user holds fails that create (the API
        refuses it); the other members still converge."
      - The same plan, check and diff mode, concurrency and wait apply as for O(containers); all refusals happen
        before any change, and an unchanged group costs one request. Two runs that scale the same group up at
        once pick the same free indexes, and the second adopts what the first created.
    type: int
  hostname_pattern:
    description:
      - The hostnames of the group of O(count), for example V(web-{index}) or V(web-{index}-eu).
      - A literal prefix that begins with a lowercase letter (lowercase letters, digits and hyphens), exactly one
        placeholder V({index}), and an optional literal suffix; every rendering must be a DNS label.
      - V({index:0Nd}) pads the index with zeros to N digits (1 to 9). V(web-{index:02d}) renders V(web-01) to
        V(web-99), then V(web-100); its group does not include V(web-1).
      - Required with O(count).
    type: str
  index_start:
    description:
      - With O(count), the lowest index a new member is given, from 0 to 1000000. Existing members of lower
        indexes still belong to the group and count.
      - Only with O(count).
    type: int
    default: 1
  cpu_cores:
    description:
      - With O(count), the CPU cores of new members, compared with the members that are kept running or started.
        When left out, new members take the value the existing members share (see O(count)).
      - Only with O(count); for O(containers), give O(containers[].cpu_cores) per item.
    type: int
  memory_mb:
    description:
      - With O(count), the memory in MiB of new members, compared with the members that are kept running or
        started. When left out, new members take the value the existing members share (see O(count)).
      - Only with O(count); for O(containers), give O(containers[].memory_mb) per item.
    type: int
  disk_gb:
    description:
      - With O(count), the disk in GiB (18 to 32) of new members, compared with the members that are kept running
        or started. When left out, new members take the value the existing members share (see O(count)).
      - Only with O(count); for O(containers), give O(containers[].disk_gb) per item.
    type: int
  state:
    description:
      - The state of every item that does not name one.
      - Not with O(count), whose count decides the power state of every member (leave it out, or V(present)).
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
      - Seconds to wait, for the fleet as a whole, until every provisioning container has settled; those still
        provisioning then are failures, named with their last state. Greater than 0 and at most 86400.
      - The wait starts once the last create and power request of the fleet has been answered, so the time these
        requests take (bounded by O(api_timeout) and O(api_retries)) does not count; the containers are polled at
        least once before any is declared still provisioning.
      - Power requests that wait for provisioning to end (a new container to be V(stopped)) are sent after the
        wait.
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

- name: Add web containers up to eight, with the spec the existing members share (no spec given)
  hzel.cloud.hzel_containers:
    hostname_pattern: web-{index}
    count: 8

- name: Run five api containers, api-1 to api-5 (starting stopped ones first, stopping any above five)
  hzel.cloud.hzel_containers:
    hostname_pattern: api-{index}
    count: 5
    cpu_cores: 2
    memory_mb: 1024
  register: api

- name: Name the running members
  ansible.builtin.debug:
    msg: "{{ api.group.active | join(', ') }}"

- name: Stop every member of the worker group (zero-padded names, worker-01, worker-02, ...)
  hzel.cloud.hzel_containers:
    hostname_pattern: worker-{index:02d}
    count: 0

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
    - With O(count), the records of the members that the count keeps running, starts, stops or creates, sorted by
      index; members left as they were (stopped beyond the count, failed) are only in RV(group.members).
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
    - What was done to each container, by hostname (in check mode, what would be done); one entry per item.
    - When the containers of two items share a hostname (an admin token may see two containers of one name, which
      are then named by id), each is keyed by its hostname and its id in parentheses, for example
      "twin (01942cf7-...)"; so are their entries in RV(failures), RV(failure_details) and the diff headers.
    - V(create) for a new container (then brought to its state), V(start), V(stop), V(restart), or V(none).
    - A container that another run created at the same moment is adopted, and shows what it needed after that.
  returned: always
  type: dict
  sample: {"web-1": "create", "web-2": "none", "batch-1": "stop"}
group:
  description:
    - With O(count), the group of O(hostname_pattern) after the change (in check mode, as predicted; on a refused
      plan, as read).
  returned: with O(count), on success, when some members did not converge, and when members' spec refused the plan
  type: dict
  contains:
    hostname_pattern:
      description: The pattern, as given.
      type: str
      sample: web-{index}
    count:
      description: The count asked for.
      type: int
      sample: 3
    members:
      description:
        - The record of every member, sorted by index, whatever its state; the same fields as RV(containers).
      type: list
      elements: dict
    active:
      description: The hostnames of the members that are V(running) or V(provisioning), sorted by index.
      type: list
      elements: str
      sample: [web-1, web-2, web-3]
    stopped:
      description: The hostnames of the stopped members, sorted by index.
      type: list
      elements: str
      sample: [web-4]
    failed:
      description:
        - The hostnames of the members in state V(failed), sorted by index; they are not counted and their
          hostnames stay taken.
      type: list
      elements: str
      sample: [web-5]
failures:
  description:
    - Why each container that did not converge failed, keyed as in RV(actions).
    - A failure that is not the API's (an unexpected error, for example a reply that cannot be read) names the
      error's class.
  returned: when some containers did not converge
  type: dict
  sample: {"fail-1": "Container fail-1 (01942cf7-...) ended in state 'failed' while provisioning"}
left_failed:
  version_added: 1.1.0
  description:
    - With O(count), the members that were being stopped to scale down and ended in state V(failed) instead, with
      what happened to each, keyed as in RV(actions). They are no longer counted, so they do not fail the task; a
      warning names them.
  returned: when a member being stopped ended in state V(failed)
  type: dict
  sample: {"web-4": "Container web-4 (01942cf7-...) ended in state 'failed' while provisioning"}
failure_details:
  description:
    - The API's C(error.code) (as C(error_code)) and the HTTP status (as C(status)) of each failure in RV(failures)
      that had them, keyed as in RV(actions).
    - A container that ended V(failed) or was still provisioning at O(wait_timeout) has no entry.
  returned: when some containers did not converge on an API error
  type: dict
  sample: {"web-9": {"error_code": "BAD_REQUEST", "status": 400}}
problems:
  description:
    - Why the plan was refused, by item (C(containers[N]); with O(count), by hostname); nothing was changed.
    - With O(count) and no spec, when the members differ in a field that new members would take, by option
      (C(cpu_cores), C(memory_mb), C(disk_gb)) with the members' values.
    - 'The message names each item once, by its place in the list and its hostname or id, for example
      "containers[1] (web-2): disk_gb must be between 18 and 32 (got 99)".'
  returned: when the plan was refused
  type: dict
  sample: {"containers[0]": "container web-1 (01942cf7-...) differs from the requested spec: cpu_cores is 2, ..."}
error_code:
  description:
    - The API's C(error.code) of a failure, where the API sent one (a refused token, or a refused create).
    - When some containers did not converge, only where all their failures share one code; each one's is in
      RV(failure_details).
  returned: failure
  type: str
  sample: UNAUTHORIZED
status:
  description:
    - The HTTP status of a failure, where there was one.
    - When some containers did not converge, only where all their failures share one status; each one's is in
      RV(failure_details).
  returned: failure
  type: int
  sample: 401
"""

from ansible_collections.hzel.cloud.plugins.module_utils._executor import FleetExecutor
from ansible_collections.hzel.cloud.plugins.module_utils._module import (
    converge_argument_spec,
    converge_result,
    fleet_settings,
    hzel_module,
    run,
)
from ansible_collections.hzel.cloud.plugins.module_utils._options import (
    DESIRED_STATES,
    PARALLELISM_DEFAULT,
    SPEC_FIELDS,
)
from ansible_collections.hzel.cloud.plugins.module_utils._plan import desired_fleet
from ansible_collections.hzel.cloud.plugins.module_utils._scale import INDEX_START_DEFAULT, GroupResolver, scale_group

# The options of a count group; none of them goes with a list of containers.
GROUP_OPTIONS = ("count", "hostname_pattern", "index_start") + SPEC_FIELDS


def main():
    argument_spec = converge_argument_spec()
    argument_spec.update(
        containers=dict(
            type="list",
            elements="dict",
            options=dict(
                hostname=dict(type="str"),
                id=dict(type="str"),
                cpu_cores=dict(type="int"),
                memory_mb=dict(type="int"),
                disk_gb=dict(type="int"),
                state=dict(type="str", choices=list(DESIRED_STATES)),
            ),
        ),
        count=dict(type="int"),
        hostname_pattern=dict(type="str"),
        index_start=dict(type="int", default=INDEX_START_DEFAULT),
        cpu_cores=dict(type="int"),
        memory_mb=dict(type="int"),
        disk_gb=dict(type="int"),
        parallelism=dict(type="int", default=PARALLELISM_DEFAULT),
    )
    module = hzel_module(
        argument_spec,
        supports_check_mode=True,
        required_one_of=[("containers", "count")],
        # Checked before defaults are set: only an index_start that was given conflicts with containers.
        mutually_exclusive=[("containers", option) for option in GROUP_OPTIONS],
        required_together=[("count", "hostname_pattern")],
    )
    params = module.params

    def converge(client):
        executor = FleetExecutor(client, fleet_settings(params), check_mode=module.check_mode)
        if params["count"] is None:
            desired = desired_fleet(params["containers"], params["state"])
            return converge_result(module, lambda: executor.converge(desired))
        group = scale_group(
            params["hostname_pattern"],
            params["count"],
            params["index_start"],
            {name: params[name] for name in SPEC_FIELDS},
            params["state"],
        )
        resolver = GroupResolver(group)
        try:
            return converge_result(
                module,
                lambda: executor.converge_derived(resolver, resolver.release),
                lambda records: {"group": resolver.view(records)},
            )
        finally:
            failed = resolver.failed_before()
            if failed:
                module.warn(
                    "hostname_pattern %s: members in state 'failed' are not counted and their hostnames stay taken "
                    "(the hzel API cannot repair or delete a container): %s" % (group.pattern.text, ", ".join(failed))
                )
            if resolver.left_failed:
                module.warn(
                    "hostname_pattern %s: members being stopped to scale down ended in state 'failed' instead; they "
                    "are no longer counted, so they do not fail the task (see left_failed): %s"
                    % (group.pattern.text, ", ".join(resolver.left_failed))
                )

    run(module, converge, pool_size=params["parallelism"])


if __name__ == "__main__":
    main()
