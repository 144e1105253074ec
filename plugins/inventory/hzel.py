# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: hzel
short_description: hzel containers as inventory hosts
version_added: 1.0.0
author:
  - hzel.cloud contributors (@hzel)
description:
  - Lists the hzel containers visible to an API token as inventory hosts, named by their hostname and added in
    hostname order.
  - Every host is in the group C(hzel) and has the container's fields as host variables with a prefix
    (default C(hzel_)) - C(hzel_id), C(hzel_user_id), C(hzel_state), C(hzel_cpu_cores), C(hzel_memory_mb),
    C(hzel_disk_gb), C(hzel_created_at).
  - Uses a YAML configuration file whose name ends in C(hzel.yml) or C(hzel.yaml), for example C(fleet.hzel.yml).
    This plugin does not read a file of any other name (such as C(fleet.yml)), and ansible-core then says only that
    the source could not be verified; with C(-vvv) this plugin says why.
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
      - Fetched only for the containers that can become hosts (after O(state), the hostname checks and the names of
        O(groups); before O(filters), which may use them), concurrently, in a pool of O(metrics_workers); a request
        answered C(429) waits as C(Retry-After) asks instead of failing (see O(api_retries)).
      - A host whose metrics cannot be read keeps its other variables and gets no metrics; one warning counts such
        hosts and names the first few.
    type: bool
    default: false
  shard:
    version_added: 1.1.0
    description:
      - "Only the containers of one shard of the fleet become hosts: O(shard.count) shards, and this source takes
        the one of index O(shard.index) (counting from 0). Several inventory sources (AWX instance groups,
        controllers) with the same O(shard.count) and each O(shard.index) split one fleet between them, each
        container in exactly one."
      - "A container belongs to the shard whose index is the CRC-32 of its hostname's UTF-8 bytes modulo
        O(shard.count) (in Python, C(zlib.crc32) of the encoded hostname, modulo the count), so any tool can
        compute it. It depends
        on the hostname and O(shard.count) only: containers created later never move an existing host to another
        shard; changing O(shard.count) does."
      - Applied before O(include_metrics), so each source reads the metrics of its own hosts only.
      - An O(shard.index) not below O(shard.count), a O(shard.count) below 1 or above 1000, or another key is an
        error before any request.
    type: dict
    suboptions:
      count:
        description: How many shards the fleet is split into, from 1 to 1000.
        type: int
        required: true
      index:
        description: The shard this source takes, from 0 to O(shard.count) minus 1.
        type: int
        required: true
  metrics_workers:
    description:
      - How many metrics requests are in flight at once with O(include_metrics=true), over all the processes that
        read them (see O(metrics_processes)); from 1 to 256.
      - "The default, 128, comes from measurement. The API's latency sets a floor: 10,000 hosts whose metrics are
        answered in 20 ms take 10,000 x 20 ms / O(metrics_workers) at least (6.25 s at 32 workers, 1.6 s at 128),
        on top of an inventory of the same hosts without metrics (about 3.2 s). And each answer costs the
        process that reads it some 300 microseconds of Python: with more than a few dozen requests in flight,
        one process is bound by one core, which O(metrics_processes) lifts."
      - "Lower it to spare the API, or where it limits concurrent connections. A rate limit does not call for a
        lower value: O(api_rate_limit) keeps to one, the API's RateLimit headers are followed, and answers
        C(429) make every request hold and then go out at the pace the API let through (see O(api_retries))."
    type: int
    default: 128
  metrics_processes:
    version_added: 1.1.0
    description:
      - How many processes read the metrics with O(include_metrics=true), each with its own connections and a share
        of O(metrics_workers) (shares that differ by one at most; never more processes than O(metrics_workers));
        from 1 to 16.
      - By default, on Linux, one per CPU that Python counts on the machine that runs Ansible (at most 4; a CPU
        quota of a container is not seen) or one per 32 requests in flight (O(metrics_workers)), whichever is
        more, at most 8, since more threads in one process cost each request more CPU time (measured with 10,000
        hosts at 128 workers on two cores, 1.8 times the plain run in 4 processes against 2.0 times in 2). Never
        more than one per 1,000 hosts whose metrics are read (a process takes a few milliseconds to start; a few
        hundred hosts are read in one). By default one on other systems (Python holds forking unsafe on macOS),
        and always one where processes cannot be forked (the C(fork) start method of Python's C(multiprocessing)).
      - Always one when O(api_rate_limit) is set, when the list's reply stated the API's budget (C(RateLimit-*)
        headers), or when the list was answered C(429); the client that read the list then reads the metrics too,
        with what it learnt of the limit, and one process keeps to a limit exactly. Where the API states its budget
        only on metrics replies, or shows a limit only by answers C(429) to them, each process keeps to it on its
        own.
      - A process that ends without answering (killed, out of memory) fails the metrics of its hosts only, as any
        failed metrics request does; one that cannot be started (a process limit) leaves its hosts to be read in
        the plugin's own process. On Ctrl-C or a cancelled job the processes end with the plugin's, and one whose
        parent is gone makes no further request.
    type: int
  connect_with:
    description:
      - How Ansible reaches a host, as its C(ansible_host).
      - V(none) sets no C(ansible_host), so Ansible connects to the inventory hostname (the container's hostname)
        as the local resolver knows it, or to what O(compose) sets.
      - V(hostname) sets C(ansible_host) to the container's hostname, for a network whose resolver serves the
        containers' hostnames (a search domain).
      - V(fqdn) sets C(ansible_host) to C(<hostname>.<host_domain>), with O(host_domain).
      - O(compose) is applied after this option and can override C(ansible_host).
      - With V(hostname) or V(fqdn), a container whose connection name a resolver reads as an IPv4 address instead
        of looking it up (a name made only of one to four dot-separated numbers, in the forms C(inet_aton) takes,
        such as C(2130706433), C(0x7f000001) or C(0), or such a hostname under a O(host_domain) of numbers) is
        skipped with a warning that names it. Such a name is a DNS label that any tenant may choose, and would
        make Ansible connect to an address of the tenant's choosing (C(2130706433) is C(127.0.0.1)). With V(none)
        such a container stays a host (the playbooks of this collection that act through the API need no address),
        and a connection to it goes to that address unless O(connection_vars) or O(compose) set C(ansible_host).
    type: str
    choices: [none, hostname, fqdn]
    default: none
  host_domain:
    description:
      - The DNS domain under which the containers' hostnames resolve, for O(connect_with=fqdn), for example
        V(containers.example.net). Required with O(connect_with=fqdn); an error with any other O(connect_with).
      - Dot-separated labels of 1 to 63 letters, digits and hyphens that neither start nor end with a hyphen; at
        most 189 characters, so that C(<hostname>.<host_domain>) stays within the 253 characters of a DNS name.
        One trailing dot is accepted and dropped (V(example.net.) gives the same C(ansible_host) as V(example.net));
        a leading dot is an error.
    type: str
  connection_vars:
    description:
      - Connection variables set on every host, as they are written (literal values, never templated; a value
        such as V({{ x }}) reaches the host as those characters).
      - "Keys are connection variables only: C(ansible_host), C(ansible_connection), C(ansible_port), C(ansible_user),
        C(ansible_timeout), C(ansible_pipelining), C(ansible_host_key_checking), C(ansible_private_key_file),
        C(ansible_remote_tmp), C(ansible_python_interpreter), C(ansible_shell_type), C(ansible_shell_executable),
        C(ansible_become), C(ansible_become_method), C(ansible_become_user), C(ansible_become_exe),
        C(ansible_become_flags), and the SSH ones C(ansible_ssh_common_args), C(ansible_ssh_extra_args),
        C(ansible_sftp_extra_args), C(ansible_scp_extra_args), C(ansible_ssh_args), C(ansible_ssh_executable),
        C(ansible_ssh_host_key_checking), C(ansible_ssh_pipelining), C(ansible_ssh_port),
        C(ansible_ssh_private_key_file), C(ansible_ssh_retries), C(ansible_ssh_timeout),
        C(ansible_ssh_transfer_method), C(ansible_ssh_user)."
      - Any other key is an error that names it and the nearest allowed key. Set other variables with O(compose).
      - C(ansible_host) here is one address for every host, such as an SSH gateway that picks the container by the
        user name (with O(compose) setting C(ansible_user)); it is an error together with O(connect_with) other
        than V(none).
      - A password or passphrase (C(ansible_password), C(ansible_ssh_pass), C(ansible_become_password), and so on)
        is an error that does not repeat its value. An inventory source is a plain file; use a vaulted variable or
        a machine credential.
      - Values are strings, whole numbers or booleans.
      - O(compose) is applied after this option and can override any of these variables.
    type: dict
    default: {}
notes:
  - "Values from the API and from O(connection_vars) are data, never templates, on every supported ansible-core.
    A string from the API is left plain only when it is made of letters, digits and C(. _ : + -) (as ids,
    timestamps, hostnames and states are); any other is marked unsafe, since before ansible-core 2.19 a plain value
    written inside C({{ }}) of a conditional is evaluated as an expression. A string of O(connection_vars) is marked
    unsafe when it contains C({), C(}) or C(#) (every Jinja2 template needs one of them, including the C(#jinja2:)
    header that redefines the delimiters). Any other string renders as itself and is left plain (on ansible-core
    2.19 and later, marked trusted), so that C(ansible-inventory --list --export), which AWX stores, prints plain
    strings and numbers for ordinary values. Numbers, booleans and null stay as they are. A C(%) alone starts no
    template, so an C(ansible_ssh_common_args) with C(%h:%p) stays plain."
  - "Each host's variables are set in this order: the container's fields (and metrics), then O(connect_with)'s
    C(ansible_host) and O(connection_vars), then O(compose), which can override any of them (for example
    C(ansible_user: hzel_hostname) in O(compose) wins over C(ansible_user) in O(connection_vars))."
  - "O(api_token), O(api_url) and the other API options may be templates that use extra variables, for example
    C(api_token: '{{ hzel_token }}') with C(-e @vaulted.yml) or C(-e hzel_token=...). Only values written in the
    file are templated; one from the environment (E(HZEL_API_TOKEN)) is taken as it is. A template that fails is an
    error naming the option, never its value. Note that C(ansible-inventory --list) prints extra variables among
    the host variables, as it does for any inventory: give the token through a vaulted file or the environment
    when that output is kept."
  - "Containers are selected in this order: the hostname checks below (over every visible container), O(state),
    the names that O(groups) makes, then metrics are fetched (O(include_metrics)) for the containers left only,
    then O(filters) (which may use the metrics), then the names that O(keyed_groups) makes."
  - "Numbers as keys of O(keyed_groups) name groups by their digits on every supported ansible-core (C(key:
    hzel_memory_mb) with C(prefix: memory) makes C(memory_512)), where ansible-core alone refuses a number."
  - "Containers whose hostname Ansible reserves (C(localhost), C(all), C(ungrouped)) or that equals a group name
    (C(hzel), a key of O(groups) whether or not any host meets its condition, a name that O(keyed_groups) makes for
    any of the hosts, or a group of an inventory source read before), whose hostname is not a DNS label, or whose
    hostname more than one visible container holds (possible with an admin token) are skipped, with a warning that
    names them (scrubbed of the API token): such a host would silently take the place of another. Every group name
    is known before the first host is added, so the outcome does not depend on the order of the hostnames."
  - A key in the configuration file that is not an option of this plugin is an error that names the key and the
    nearest option, so that a misspelt O(state) cannot silently select every container.
  - A refused token or an unreachable API is an inventory error naming the cause. Set
    E(ANSIBLE_INVENTORY_UNPARSED_FAILED=true) (as AWX does) to make it fail the run instead of a warning.
  - The cache holds the container records (and metrics) only, never the API token. Its key includes the API URL
    and a hash of the token, so a run with another token or another URL never reads another's cached hosts, and
    the options that shape what is fetched (O(include_metrics), O(state)), so that a cache filled without metrics
    never answers a run that asks for them.
  - A run in which a metrics fetch failed (or a metrics reply held a value that is not a finite number) writes
    nothing to the cache, so the next run asks again; a cached entry that lacks the metrics of a host is not used.
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
# reachable.hzel.yml - running containers as <hostname>.containers.example.net, through a bastion
plugin: hzel.cloud.hzel
state: [running]
connect_with: fqdn
host_domain: containers.example.net
connection_vars:
  ansible_user: deploy
  ansible_ssh_common_args: -o ProxyJump=jump@bastion.example.net
  ansible_python_interpreter: /usr/bin/python3

---
# gateway.hzel.yml - containers without a DNS name, published on one address with a port each
# (ports.csv holds lines such as "web-1,22001", and is found as lookups find files: beside the playbook, or in
# the current directory of ansible-inventory); a container missing from ports.csv is left out, since it has no
# port. ansible-core 2.19 or later: before it, filters and compose cannot call lookups.
plugin: hzel.cloud.hzel
filters:
  - lookup('ansible.builtin.csvfile', hzel_hostname, file='ports.csv', delimiter=',', default='') != ''
connection_vars:
  ansible_host: 203.0.113.10
  ansible_user: root
compose:
  ansible_port: lookup('ansible.builtin.csvfile', hzel_hostname, file='ports.csv', delimiter=',') | int
  # compose is applied last: this wins over connection_vars
  ansible_user: hzel_hostname

---
# extra-vars.hzel.yml - the token from an extra variable: ansible-inventory -i extra-vars.hzel.yml -e hzel_token=...
plugin: hzel.cloud.hzel
api_token: "{{ hzel_token }}"

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
import json
import math
import re

from ansible.errors import AnsibleError
from ansible.inventory.data import InventoryData
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core before 2.19 templates any string that looks like a template
    trust_as_template = None

from ansible_collections.hzel.cloud.plugins.module_utils._containers import RECORD_FIELDS
from ansible_collections.hzel.cloud.plugins.module_utils._executor import (
    PROCESSES_MAX,
    fetch_metrics,
    fetch_metrics_spread,
    spread_over,
)
from ansible_collections.hzel.cloud.plugins.module_utils._options import (
    API_OPTIONS,
    RATE_OPTIONS,
    InvalidParameters,
    build_client,
    check_number,
    unknown_keys,
)
from ansible_collections.hzel.cloud.plugins.module_utils._plan import is_hostname
from ansible_collections.hzel.cloud.plugins.module_utils._shard import parse_shard
from ansible_collections.hzel.cloud.plugins.module_utils._transport import HzelError, Scrubber

GROUP = "hzel"
# The most metrics requests in flight at once (metrics_workers), over all the processes that read them.
METRICS_WORKERS_MAX = 256
# Names that mean something to Ansible: a container called 'localhost' would turn every
# 'hosts: localhost' play of whoever uses this inventory into an SSH connection to it.
RESERVED_NAMES = frozenset(("localhost", "all", "ungrouped"))
LISTED_NAMES = 10
# How much of one outside value (a hostname, an id) a warning shows, after scrubbing.
NAME_LIMIT = 200

# A Jinja2 template needs '{{', '{%' or '{#', or a '#jinja2:' header that redefines them
# (ansible-core honours it, and then '[[ x ]]' is a template): a string without '{', '}'
# and '#' renders as itself on every supported ansible-core.
TEMPLATE_MARKERS = re.compile(r"[{}#]")
# Values from the API are left plain only when they are made of these characters, as ids, timestamps,
# hostnames and states are: on ansible-core before 2.19 a plain value that a playbook writes inside
# '{{ }}' of a conditional is evaluated as an expression, so quotes, spaces or parentheses from the
# API must never be plain.
PLAIN_API_VALUE = re.compile(r"[A-Za-z0-9._:+-]*")

CONNECT_WITH = ("none", "hostname", "fqdn")
# The connection variables that connection_vars may set: how to reach and log in to a host,
# never a secret (those belong in a vault or a credential, not in an inventory source).
CONNECTION_VARS = frozenset(
    (
        "ansible_host",
        "ansible_connection",
        "ansible_port",
        "ansible_user",
        "ansible_timeout",
        "ansible_pipelining",
        "ansible_host_key_checking",
        "ansible_private_key_file",
        "ansible_ssh_common_args",
        "ansible_ssh_extra_args",
        "ansible_sftp_extra_args",
        "ansible_scp_extra_args",
        "ansible_ssh_args",
        "ansible_ssh_executable",
        "ansible_ssh_host_key_checking",
        "ansible_ssh_pipelining",
        "ansible_ssh_port",
        "ansible_ssh_private_key_file",
        "ansible_ssh_retries",
        "ansible_ssh_timeout",
        "ansible_ssh_transfer_method",
        "ansible_ssh_user",
        "ansible_become",
        "ansible_become_method",
        "ansible_become_user",
        "ansible_become_exe",
        "ansible_become_flags",
        "ansible_python_interpreter",
        "ansible_shell_type",
        "ansible_shell_executable",
        "ansible_remote_tmp",
    )
)
SECRET_VARS = frozenset(
    (
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_ssh_password",
        "ansible_become_password",
        "ansible_become_pass",
        "ansible_private_key_passphrase",
        "ansible_ssh_private_key_passphrase",
        "ansible_sudo_pass",
        "ansible_sudo_password",
        "ansible_su_pass",
        "ansible_su_password",
    )
)
DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# A number as inet_aton reads it (decimal, 0x hexadecimal, 0 octal), whatever its size: resolvers take a name
# of one to four such parts as an IPv4 address (2130706433, 0x7f000001, 0177.1 and 127.1 are 127.0.0.1; 0 is
# 0.0.0.0), without asking DNS.
NUMERIC_PART = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")
# A DNS name is at most 253 characters; a hostname (a label) takes up to 63 of them and a dot.
HOST_DOMAIN_MAX = 253 - 64


def as_data(value):
    """A value from outside as a host variable: never a template, and exported as it is wherever possible.

    A string that could be a template is marked unsafe (on 2.19 and later: not trusted), so it is
    never templated; any other string renders as itself, so it is left plain (on 2.19 and later:
    trusted, which ``ansible-inventory --export`` prints as a plain string). Other values stay as they are.
    """
    if isinstance(value, str):
        if TEMPLATE_MARKERS.search(value):
            return wrap_var(value)
        return trust_as_template(value) if trust_as_template else value
    return value


def as_api_data(value):
    """A value from the API as a host variable: plain only when it is made of id, timestamp and name characters."""
    if isinstance(value, str):
        if PLAIN_API_VALUE.fullmatch(value) is None:
            return wrap_var(value)
        # Made of those characters only, it holds none of TEMPLATE_MARKERS: as_data would leave it plain.
        return trust_as_template(value) if trust_as_template else value
    return value


def finite_metrics(metrics):
    """Whether every metric is a finite number: NaN or Infinity would make the inventory's JSON invalid."""
    return isinstance(metrics, dict) and all(
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        for value in metrics.values()
    )


def reads_as_address(name):
    """Whether a resolver would take this name for an IPv4 address (inet_aton's forms), not look it up."""
    name = name[:-1] if name.endswith(".") else name
    parts = name.split(".")
    return len(parts) <= 4 and all(NUMERIC_PART.fullmatch(part) for part in parts)


def _kind(value):
    if value is None:
        return "null"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple, set)):
        return "a list"
    return "a %s" % type(value).__name__


def host_domain_problem(domain):
    """Why host_domain is not a usable DNS name, or None."""
    if not isinstance(domain, str) or not domain:
        return "host_domain must be a DNS name such as containers.example.net"
    name = domain[:-1] if domain.endswith(".") else domain
    if name.startswith("."):
        return "host_domain must not start with a dot"
    if len(name) > HOST_DOMAIN_MAX:
        return (
            "host_domain is %d characters long; at most %d, so that a 63-character hostname under it stays "
            "within the 253 characters of a DNS name" % (len(name), HOST_DOMAIN_MAX)
        )
    for label in name.split("."):
        if not DNS_LABEL.fullmatch(label):
            return (
                "host_domain must be a DNS name: dot-separated labels of 1 to 63 letters, digits and hyphens, "
                "not starting or ending with a hyphen (got %r)" % domain
            )
    return None


SKIP_REASONS = {
    "reserved": "a hostname that is a name Ansible reserves (localhost, all, ungrouped) or this plugin's "
    "group '%s'" % GROUP,
    "invalid": "a hostname that is not a DNS label",
    "duplicate": "a hostname that more than one visible container holds; use their ids",
    "group": "a hostname that is the name of a group (made by groups or keyed_groups, or by another inventory source)",
    "address": "a connection name that a resolver reads as an IP address, not a DNS name, so connect_with would "
    "connect to that address",
}


class _GroupNames(InventoryData):
    """An inventory in which the constructed options make their groups without any host joining one.

    It learns every group name that keyed_groups would make before a real host is added, so
    that no container takes a group's name, whatever the order in which hosts are added.
    """

    def add_host(self, host, group=None, port=None):
        return super().add_host(host, port=port)

    def add_child(self, group, child):
        if child in self.hosts:
            return False
        return super().add_child(group, child)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "hzel.cloud.hzel"
    _shard = None
    _composing_key = False

    def verify_file(self, path):
        if not super().verify_file(path):
            return False
        if path.endswith(("hzel.yml", "hzel.yaml")):
            return True
        # Core says only that the source "could not be verified": say why, where -vvv shows it.
        self.display.vvv(
            "hzel inventory: %s is not read by %s: the file name must end in hzel.yml or hzel.yaml, for example "
            "fleet.hzel.yml" % (path, self.NAME)
        )
        return False

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._path_name = path
        config = self._read_config_data(path)
        self._refuse_unknown_keys(config, path)
        # Only what the file says may be a template: a value from the environment (a token that holds
        # '{{', say) is taken as it is.
        self._from_file = frozenset(config)
        self._scrub = Scrubber(None)
        # Extra variables (-e) may be used in the templated options, for example api_token.
        self.templar.available_variables = self._vars or {}
        options = {name: self._option(name) for name in list(API_OPTIONS) + list(RATE_OPTIONS)}
        self._scrub = Scrubber(options["api_token"])
        self._connection = self._connection_settings()
        self._prefix = self.get_option("hostvar_prefix")
        self._var_names = [self._prefix + field for field in RECORD_FIELDS]
        self._skipped = {kind: [] for kind in SKIP_REASONS}
        try:
            self._shard = parse_shard(self.get_option("shard"))
        except InvalidParameters as exc:
            raise AnsibleError("hzel inventory: %s in %s" % (exc.message, path)) from None

        include_metrics = self.get_option("include_metrics")
        states = sorted(set(self.get_option("state") or ()))
        # The records a token may see depend on the token and on the API: both are in the key
        # (the token as a hash), so another user's run, or a refused token, never reads this cache.
        # So is every option that shapes what is fetched, so that a cache filled without metrics
        # never answers a run that asks for them.
        shape = json.dumps([options["api_url"], options["api_token"] or "", bool(include_metrics), states])
        cache_key = "%s_%s" % (self.get_cache_key(path), hashlib.sha256(shape.encode("utf-8")).hexdigest()[:16])
        use_cache = self.get_option("cache")
        containers = self._cache.get(cache_key) if use_cache and cache else None
        if not self._complete(containers):
            containers, complete = self._fetch_containers(options)
            # A failed metrics fetch is not cached: the next run asks again instead of
            # keeping a host without metrics for the whole cache timeout.
            if use_cache and complete:
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
        if name not in self._from_file or not isinstance(value, str) or not self.templar.is_template(value):
            return value
        try:
            return self.templar.template(value)
        except Exception as exc:  # the error repeats the template, and so perhaps a token: name only its kind
            failure = "%s in %s could not be templated (%s); check the variables it uses" % (
                name,
                self._path_name,
                type(exc).__name__,
            )
        raise AnsibleError("hzel inventory: %s" % failure)

    def _fail(self, message):
        return AnsibleError(self._scrub("hzel inventory: %s" % message))

    def _connection_settings(self):
        connect_with = self.get_option("connect_with")
        domain = self.get_option("host_domain")
        if connect_with == "fqdn":
            problem = host_domain_problem(domain)
            if domain is None:
                problem = (
                    "host_domain is required with connect_with: fqdn and missing; host_domain must be a DNS name such "
                    "as containers.example.net, under which the containers' hostnames resolve"
                )
            if problem:
                raise self._fail(problem if domain is None else "%s (connect_with: fqdn)" % problem)
            domain = domain[:-1] if domain.endswith(".") else domain
        elif domain is not None:
            raise self._fail(
                "host_domain is used only with connect_with: fqdn (connect_with is %s); remove it or set "
                "connect_with: fqdn" % connect_with
            )
        given = self.get_option("connection_vars") or {}
        if "ansible_host" in given and connect_with != "none":
            raise self._fail(
                "connection_vars.ansible_host and connect_with: %s both set ansible_host; keep one" % connect_with
            )
        secrets = sorted(str(key) for key in given if key in SECRET_VARS)
        if secrets:
            raise self._fail(
                "connection_vars must not hold a secret (%s): an inventory source is a plain file; put it in a "
                "vaulted variable or a machine credential instead" % ", ".join(secrets)
            )
        unknown = unknown_keys(given, sorted(CONNECTION_VARS))
        if unknown:
            raise self._fail(
                "connection_vars takes connection variables only; not %s. Use compose for any other variable"
                % ", ".join(unknown)
            )
        variables = {}
        for key, value in sorted(given.items()):
            if value is None or not isinstance(value, (str, int)):
                raise self._fail(
                    "connection_vars.%s must be a string, a whole number or true/false, not %s" % (key, _kind(value))
                )
            variables[key] = as_data(value)
        return connect_with, domain, variables

    def _connection_name(self, hostname):
        """The name that connect_with makes the host's ansible_host, or None."""
        connect_with, domain, _variables = self._connection
        if connect_with == "hostname":
            return hostname
        if connect_with == "fqdn":
            return "%s.%s" % (hostname, domain)
        return None

    def _connection_variables(self, hostname):
        variables = dict(self._connection[2])
        name = self._connection_name(hostname)
        if name is not None:
            variables["ansible_host"] = as_data(name)
        return variables

    def _complete(self, containers):
        """Whether cached records can answer this run: a list, with metrics for every host that needs them."""
        if not isinstance(containers, list):
            return False
        if not self.get_option("include_metrics"):
            return True
        return all(finite_metrics(record.get("metrics")) for record in self._select(containers))

    def _fetch_containers(self, options):
        """The records, with metrics for the containers that will be hosts; and whether every metrics fetch worked."""
        try:
            workers = check_number(
                "metrics_workers",
                self.get_option("metrics_workers"),
                1,
                METRICS_WORKERS_MAX,
                integer=True,
                low_inclusive=True,
            )
            processes = self.get_option("metrics_processes")
            if processes is not None:
                processes = check_number(
                    "metrics_processes", processes, 1, PROCESSES_MAX, integer=True, low_inclusive=True
                )
            client = build_client(options, pool_size=workers)
            containers = client.list()
            failures = {}
            if self.get_option("include_metrics"):
                wanted = self._select(containers)
                # Under a limit (api_rate_limit, a budget the API stated, answers 429 to the list) the list's own
                # client reads the metrics, with all that it learnt of the limit: in one process, which keeps to it.
                gate, rate = client.transport.gate, client.transport.rate
                limited = options.get("api_rate_limit") is not None or gate.budget_stated or rate.limited
                processes = 1 if limited else spread_over(len(wanted), workers, processes)
                if processes == 1:
                    fetched, failures = fetch_metrics(client, wanted, workers)
                else:
                    # One client per process, none of whose connections were used (the list's stays here).
                    share = -(-workers // processes)
                    clients = [build_client(options, pool_size=share) for _index in range(processes)]
                    try:
                        fetched, failures = fetch_metrics_spread(clients, wanted, workers)
                    finally:
                        for each in clients:
                            each.transport.close()
                # The fetched records are copies with their metrics, in the order of the wanted ones: each takes
                # the place of the very record it was made from (by identity, so no id or hostname can be confused).
                with_metrics = {}
                for listed, record in zip(wanted, fetched):
                    if record["metrics"] is None:
                        continue
                    if finite_metrics(record["metrics"]):
                        with_metrics[id(listed)] = record
                    else:
                        failures[record["hostname"]] = "the metrics reply holds a value that is not a finite number"
                containers = [with_metrics.get(id(record), record) for record in containers]
                if failures:
                    listed = "; ".join("%s: %s" % item for item in sorted(failures.items())[:3])
                    self.display.warning(
                        self._scrub(
                            "hzel inventory: no metrics for %d of %d hosts; they keep their other variables (%s)"
                            % (len(failures), len(wanted), listed)
                        )
                    )
        except HzelError as exc:
            failure = exc.message
        else:
            return containers, not failures
        # Raised outside the except block so that no chained traceback goes with it.
        raise self._fail(failure)

    def _host_variables(self, container):
        values = [container.get(field) for field in RECORD_FIELDS]
        # One match for all the strings: their concatenation is plain exactly when each of them is.
        if PLAIN_API_VALUE.fullmatch("".join([value for value in values if isinstance(value, str)])) is None:
            variables = {name: as_api_data(value) for name, value in zip(self._var_names, values)}
        elif trust_as_template is None:
            variables = dict(zip(self._var_names, values))
        else:
            variables = {
                name: trust_as_template(value) if isinstance(value, str) else value
                for name, value in zip(self._var_names, values)
            }
        metrics = container.get("metrics")
        if finite_metrics(metrics):
            prefix = self._prefix
            for name, value in metrics.items():
                variables[prefix + name] = value
        return variables

    def _compose(self, template, variables, *args, **kwargs):
        value = super()._compose(template, variables, *args, **kwargs)
        # A number as a keyed group's key names a group by its digits: ansible-core keeps a lone number as a number
        # and refuses it as a group name ("Invalid group name format").
        if self._composing_key and isinstance(value, (int, float)):
            return str(value)
        return value

    def _add_host_to_keyed_groups(self, keys, variables, host, strict=False, fetch_hostvars=True):
        self._composing_key = True
        try:
            return super()._add_host_to_keyed_groups(
                keys, variables, host, strict=strict, fetch_hostvars=fetch_hostvars
            )
        finally:
            self._composing_key = False

    def _composed_group_names(self):
        """The names that groups makes, known before any host is added (with and without sanitising)."""
        names = set()
        for name in self.get_option("groups") or {}:
            names.update((name, self._sanitize_group_name(name)))
        return names

    def _select(self, containers, warn=False):
        """The containers that can be hosts before filters, in hostname order; the rest are noted by reason.

        Applies, in this order: the shard, the hostname checks (over every visible container of the shard),
        state, and the names of the groups that groups makes. Pure unless ``warn``, so it can run twice in one parse.
        """
        by_name = {}
        for container in containers:
            by_name.setdefault(container.get("hostname"), []).append(container)
        states = set(self.get_option("state") or ())
        group_names = self._composed_group_names()
        selected = []
        for hostname in sorted(by_name, key=lambda name: name if isinstance(name, str) else ""):
            holders = by_name[hostname]
            # Another shard's container is another source's business: not selected, not warned about here.
            if self._shard and not self._shard.holds(hostname if isinstance(hostname, str) else ""):
                continue
            if not is_hostname(hostname):
                reason, shown = "invalid", repr(self._scrub(hostname, len(str(hostname)) + 1))
            elif hostname in RESERVED_NAMES or hostname == GROUP:
                reason, shown = "reserved", hostname
            elif len(holders) > 1:
                # Ids are outside text: scrubbed, one line each (no control character reaches the terminal).
                ids = ", ".join(sorted(self._scrub.excerpt(str(c.get("id")), NAME_LIMIT) for c in holders))
                reason, shown = "duplicate", "%s (ids %s)" % (hostname, ids)
            elif states and holders[0].get("state") not in states:
                continue
            elif hostname in group_names:
                reason, shown = "group", hostname
            elif self._connection_name(hostname) and reads_as_address(self._connection_name(hostname)):
                name = self._connection_name(hostname)
                reason, shown = "address", hostname if name == hostname else "%s (%s)" % (hostname, name)
            else:
                selected.append(holders[0])
                continue
            if warn:
                self._skipped[reason].append(shown)
        return selected

    def _keyed_group_names(self, hosts):
        """Every group name that keyed_groups makes for these hosts, computed before any of them is added."""
        keyed_groups = self.get_option("keyed_groups")
        if not keyed_groups:
            return set()
        compose = self.get_option("compose")
        strict = self.get_option("strict")
        real, self.inventory = self.inventory, _GroupNames()
        try:
            for hostname, variables in hosts:
                self.inventory.add_host(hostname)
                for name, value in variables.items():
                    self.inventory.set_variable(hostname, name, value)
                if compose:
                    self._set_composite_vars(compose, variables, hostname, strict=strict)
                self._add_host_to_keyed_groups(keyed_groups, variables, hostname, strict=strict)
            return set(self.inventory.groups)
        finally:
            self.inventory = real

    def _warn_skipped(self):
        for kind, names in self._skipped.items():
            if names:
                # Scrubbed whole, then cut: a cut first could leave a prefix of the token.
                shown = [self._scrub(name, NAME_LIMIT) for name in names[:LISTED_NAMES]]
                self.display.warning(
                    self._scrub(
                        "hzel inventory: skipped %d container(s) with %s: %s%s"
                        % (
                            len(names),
                            SKIP_REASONS[kind],
                            ", ".join(shown),
                            " and %d more" % (len(names) - LISTED_NAMES) if len(names) > LISTED_NAMES else "",
                        )
                    )
                )

    def _populate(self, containers):
        filters = self.get_option("filters") or []
        strict = self.get_option("strict")
        compose = self.get_option("compose")
        groups = self.get_option("groups")
        keyed_groups = self.get_option("keyed_groups")
        inventory = self.inventory
        inventory.add_group(GROUP)
        connects = self._connection[0] != "none" or bool(self._connection[2])
        hosts = []
        for container in self._select(containers, warn=True):
            variables = self._host_variables(container)
            if filters and not all(self._compose(expression, variables) for expression in filters):
                continue
            if connects:
                variables.update(self._connection_variables(container["hostname"]))
            hosts.append((container["hostname"], variables))
        # A host and a group must not share a name, or 'hosts: <name>' targets the container: every group
        # name is known before the first host is added, so the outcome does not depend on hostname order.
        taken = set(inventory.groups) | self._composed_group_names() | self._keyed_group_names(hosts)
        for hostname, variables in hosts:
            if hostname in taken:
                self._skipped["group"].append(hostname)
                continue
            inventory.add_host(hostname, group=GROUP)
            # The host's own set_variable, as the inventory's would call it (without a debug line per variable).
            host = inventory.get_host(hostname)
            for name, value in variables.items():
                host.set_variable(name, value)
            # Connection variables first, then compose, which may override them. The constructed
            # options cost a lookup of every host's variables; skip them when unused.
            if compose:
                self._set_composite_vars(compose, variables, hostname, strict=strict)
            if groups:
                self._add_host_to_composed_groups(groups, variables, hostname, strict=strict)
            if keyed_groups:
                self._add_host_to_keyed_groups(keyed_groups, variables, hostname, strict=strict)
        self._warn_skipped()
