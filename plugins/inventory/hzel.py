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
      - Fetched concurrently, in a pool of O(metrics_workers); a C(429) answer holds the whole pool as C(Retry-After)
        asks instead of failing it.
      - A host whose metrics cannot be read keeps its other variables and gets no metrics; one warning counts such
        hosts and names the first few.
    type: bool
    default: false
  metrics_workers:
    description:
      - How many metrics requests are in flight at once with O(include_metrics=true); from 1 to 64.
    type: int
    default: 8
notes:
  - Every value taken from the API is marked unsafe, so a container field that looks like a Jinja2 template is
    never templated, on every supported ansible-core.
  - "Containers whose hostname Ansible reserves (C(localhost), C(all), C(ungrouped)) or that equals a group name
    (C(hzel), or one that O(groups) or O(keyed_groups) made), whose hostname is not a DNS label, or whose hostname
    more than one visible container holds (possible with an admin token) are skipped, with a warning that names
    them: such a host would silently take the place of another."
  - A key in the configuration file that is not an option of this plugin is an error that names the key and the
    nearest option, so that a misspelt O(state) cannot silently select every container.
  - A refused token or an unreachable API is an inventory error naming the cause. Set
    E(ANSIBLE_INVENTORY_UNPARSED_FAILED=true) (as AWX does) to make it fail the run instead of a warning.
  - The cache holds the container records (and metrics) only, never the API token. Its key includes the API URL
    and a hash of the token, so a run with another token or another URL never reads another's cached hosts.
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

import hashlib

from ansible.errors import AnsibleError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.hzel.cloud.plugins.module_utils._containers import RECORD_FIELDS
from ansible_collections.hzel.cloud.plugins.module_utils._executor import fetch_metrics
from ansible_collections.hzel.cloud.plugins.module_utils._options import (
    API_OPTIONS,
    PARALLELISM_MAX,
    build_client,
    check_number,
    unknown_keys,
)
from ansible_collections.hzel.cloud.plugins.module_utils._plan import is_hostname
from ansible_collections.hzel.cloud.plugins.module_utils._transport import HzelError, Scrubber

GROUP = "hzel"
# Names that mean something to Ansible: a container called 'localhost' would turn every
# 'hosts: localhost' play of whoever uses this inventory into an SSH connection to it.
RESERVED_NAMES = frozenset(("localhost", "all", "ungrouped"))
LISTED_NAMES = 10


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "hzel.cloud.hzel"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("hzel.yml", "hzel.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        config = self._read_config_data(path)
        self._refuse_unknown_keys(config, path)
        options = {name: self._option(name) for name in API_OPTIONS}
        self._scrub = Scrubber(options["api_token"])

        # The records a token may see depend on the token and on the API: both are in the key
        # (the token as a hash), so another user's run, or a refused token, never reads this cache.
        identity = hashlib.sha256(("%s\0%s" % (options["api_url"], options["api_token"] or "")).encode("utf-8"))
        cache_key = "%s_%s" % (self.get_cache_key(path), identity.hexdigest()[:16])
        use_cache = self.get_option("cache")
        containers = self._cache.get(cache_key) if use_cache and cache else None
        if containers is None:
            containers = self._fetch_containers(options)
            if use_cache:
                self._cache[cache_key] = containers
        self._populate(containers)

    def _refuse_unknown_keys(self, config, path):
        unknown = unknown_keys(config, self._options)
        if unknown:
            raise AnsibleError(
                "hzel inventory: unknown option %s in %s; see ansible-doc -t inventory hzel.cloud.hzel"
                % (", ".join(unknown), path)
            )

    def _option(self, name):
        value = self.get_option(name)
        if isinstance(value, str) and self.templar.is_template(value):
            value = self.templar.template(value)
        return value

    def _fail(self, message):
        return AnsibleError(self._scrub("hzel inventory: %s" % message))

    def _fetch_containers(self, options):
        try:
            workers = check_number(
                "metrics_workers",
                self.get_option("metrics_workers"),
                1,
                PARALLELISM_MAX,
                integer=True,
                low_inclusive=True,
            )
            client = build_client(options, pool_size=workers)
            containers = client.list()
            if self.get_option("include_metrics"):
                containers, failures = fetch_metrics(client, containers, workers)
                if failures:
                    listed = "; ".join("%s: %s" % item for item in sorted(failures.items())[:3])
                    self.display.warning(
                        self._scrub(
                            "hzel inventory: no metrics for %d of %d hosts; they keep their other variables (%s)"
                            % (len(failures), len(containers), listed)
                        )
                    )
        except HzelError as exc:
            failure = exc.message
        else:
            return containers
        # Raised outside the except block so that no chained traceback goes with it.
        raise self._fail(failure)

    def _host_variables(self, container):
        prefix = self.get_option("hostvar_prefix")
        variables = {prefix + field: container.get(field) for field in RECORD_FIELDS}
        for name, value in (container.get("metrics") or {}).items():
            variables[prefix + name] = value
        # Values from the API are data, never templates: on every ansible-core version.
        return wrap_var(variables)

    def _usable(self, containers):
        """The containers that can be hosts; the rest are named in one warning each for why."""
        by_name = {}
        for container in containers:
            by_name.setdefault(container.get("hostname"), []).append(container)
        skipped = {"reserved": [], "invalid": [], "duplicate": []}
        usable = []
        for hostname in sorted(by_name, key=lambda name: name if isinstance(name, str) else ""):
            holders = by_name[hostname]
            if not is_hostname(hostname):
                skipped["invalid"].append(repr(hostname)[:70])
            elif hostname in RESERVED_NAMES or hostname == GROUP:
                skipped["reserved"].append(hostname)
            elif len(holders) > 1:
                skipped["duplicate"].append("%s (ids %s)" % (hostname, ", ".join(sorted(c["id"] for c in holders))))
            else:
                usable.append(holders[0])
        reasons = {
            "reserved": "a hostname that is a name Ansible reserves (localhost, all, ungrouped) or this plugin's "
            "group '%s'" % GROUP,
            "invalid": "a hostname that is not a DNS label",
            "duplicate": "a hostname that more than one visible container holds; use their ids",
        }
        for kind, names in skipped.items():
            if names:
                self.display.warning(
                    "hzel inventory: skipped %d container(s) with %s: %s%s"
                    % (
                        len(names),
                        reasons[kind],
                        ", ".join(names[:LISTED_NAMES]),
                        " and %d more" % (len(names) - LISTED_NAMES) if len(names) > LISTED_NAMES else "",
                    )
                )
        return usable

    def _populate(self, containers):
        states = set(self.get_option("state") or ())
        filters = self.get_option("filters") or []
        strict = self.get_option("strict")
        compose = self.get_option("compose")
        groups = self.get_option("groups")
        keyed_groups = self.get_option("keyed_groups")
        inventory = self.inventory
        inventory.add_group(GROUP)
        for container in self._usable(containers):
            if states and container.get("state") not in states:
                continue
            variables = self._host_variables(container)
            if filters and not all(self._compose(expression, variables) for expression in filters):
                continue
            hostname = container["hostname"]
            if hostname in inventory.groups:
                # A constructed group of the same name: a host and a group must not share it.
                self.display.warning(
                    "hzel inventory: skipped container %s: its hostname is the name of a group" % hostname
                )
                continue
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
