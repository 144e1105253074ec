# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: hzel
short_description: hzel containers as inventory hosts
version_added: 0.1.0
author:
  - hzel.cloud contributors (@hzel)
description:
  - Lists the hzel containers visible to an API token as inventory hosts, named by their hostname and added in
    hostname order (a stable order, which AWX job slicing relies on).
  - Every host is in the group C(hzel) and has the container's fields as host variables with a prefix
    (default C(hzel_)) - C(hzel_id), C(hzel_user_id), C(hzel_state), C(hzel_cpu_cores), C(hzel_memory_mb),
    C(hzel_disk_gb), C(hzel_created_at).
  - Uses a YAML configuration file whose name ends in C(hzel.yml) or C(hzel.yaml).
  - Supports the constructed options (O(compose), O(groups), O(keyed_groups)) and inventory caching; a cache hit
    sends no HTTP request.
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
  - hzel.cloud.hzel.INVENTORY
options:
  plugin:
    description: The name of this plugin; it makes a file a hzel inventory source.
    type: str
    required: true
    choices: [hzel.cloud.hzel]
  state:
    description:
      - Only containers in one of these states become hosts. Empty means every state.
    type: list
    elements: str
    choices: [provisioning, running, stopped, failed]
    default: []
  filters:
    description:
      - Jinja2 conditionals over a container's host variables (with their prefix); a container becomes a host only
        when every one of them is true.
    type: list
    elements: str
    default: []
  hostvar_prefix:
    description:
      - Prefix of the host variables that carry the container's fields and metrics.
    type: str
    default: hzel_
  include_metrics:
    description:
      - Also fetch each container's current utilisation, as the host variables C(cpu_percent), C(memory_used_mb),
        C(memory_total_mb), C(disk_used_gb) and C(disk_total_gb) (with the prefix).
      - Fetched concurrently, in a pool of O(metrics_workers); a C(429) answer slows the pool down as C(Retry-After)
        asks instead of failing it.
    type: bool
    default: false
  metrics_workers:
    description:
      - How many metrics requests are in flight at once with O(include_metrics=true).
    type: int
    default: 8
notes:
  - A refused token or an unreachable API is an inventory error naming the cause. Set
    E(ANSIBLE_INVENTORY_UNPARSED_FAILED=true) (as AWX does) to make it fail the run instead of a warning.
  - The cache holds the container records (and metrics) only, never the API token.
"""

EXAMPLES = r"""
---
# fleet.hzel.yml - every container, token from HZEL_API_TOKEN
plugin: hzel.cloud.hzel

---
# running.hzel.yml - running containers with 2 or more cores, grouped by size
plugin: hzel.cloud.hzel
api_url: https://api.hzel.org
api_token: "{{ lookup('ansible.builtin.env', 'MY_HZEL_TOKEN') }}"
state: [running]
filters:
  - hzel_cpu_cores >= 2
keyed_groups:
  - key: hzel_memory_mb
    prefix: memory
groups:
  large: hzel_disk_gb >= 30
compose:
  ansible_host: hzel_hostname ~ '.containers.example.net'

---
# cached.hzel.yml - answer from a JSON file cache for an hour
plugin: hzel.cloud.hzel
include_metrics: true
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/hzel-inventory
cache_timeout: 3600
"""

from ansible.errors import AnsibleError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.hzel.cloud.plugins.module_utils._client import RECORD_FIELDS, HzelClient, HzelError
from ansible_collections.hzel.cloud.plugins.module_utils._container import attach_metrics

GROUP = "hzel"


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = "hzel.cloud.hzel"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("hzel.yml", "hzel.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)

        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache")
        containers = self._cache.get(cache_key) if use_cache and cache else None
        if containers is None:
            containers = self._fetch_containers()
            if use_cache:
                self._cache[cache_key] = containers
        self._populate(containers)

    def _option(self, name):
        value = self.get_option(name)
        if isinstance(value, str) and self.templar.is_template(value):
            value = self.templar.template(value)
        return value

    def _fetch_containers(self):
        try:
            client = HzelClient(
                api_url=self._option("api_url"),
                api_token=self._option("api_token"),
                validate_certs=self.get_option("validate_certs"),
                timeout=self.get_option("api_timeout"),
                retries=self.get_option("api_retries"),
            )
            containers = client.list_containers()
            if self.get_option("include_metrics"):
                containers = attach_metrics(client, containers, self.get_option("metrics_workers"))
        except HzelError as exc:
            failure = exc.message
        else:
            return containers
        # Raised outside the except block so that no chained traceback goes with it.
        raise AnsibleError("hzel inventory: %s" % failure)

    def _host_variables(self, container):
        prefix = self.get_option("hostvar_prefix")
        variables = {prefix + field: container.get(field) for field in RECORD_FIELDS}
        for name, value in (container.get("metrics") or {}).items():
            variables[prefix + name] = value
        return variables

    def _populate(self, containers):
        states = set(self.get_option("state") or ())
        filters = self.get_option("filters") or []
        strict = self.get_option("strict")
        compose = self.get_option("compose")
        groups = self.get_option("groups")
        keyed_groups = self.get_option("keyed_groups")
        inventory = self.inventory
        inventory.add_group(GROUP)
        for container in sorted(containers, key=lambda item: item.get("hostname") or ""):
            if states and container.get("state") not in states:
                continue
            variables = self._host_variables(container)
            if filters and not all(self._compose(expression, variables) for expression in filters):
                continue
            hostname = container["hostname"]
            inventory.add_host(hostname, group=GROUP)
            for name, value in variables.items():
                inventory.set_variable(hostname, name, value)
            # The constructed options cost a lookup of every host's variables; skip them when unused.
            if compose:
                self._set_composite_vars(compose, variables, hostname, strict=strict)
            if groups:
                self._add_host_to_composed_groups(groups, variables, hostname, strict=strict)
            if keyed_groups:
                self._add_host_to_keyed_groups(keyed_groups, variables, hostname, strict=strict)
