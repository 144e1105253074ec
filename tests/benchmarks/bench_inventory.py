#!/usr/bin/env python
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the hzel inventory plugin with 10,000 containers; prints figures, asserts nothing.

Times `ansible-inventory --list` through the plugin (HTTP to the emulator included) against a script
inventory that prints the same hosts, group and host variables precomputed: the floor that Ansible
itself sets. Both are run in turns in one run; the ratio of the medians is the figure.

Needs EMULATOR_URL (tools/bench.sh starts an emulator) and the collection on ANSIBLE_COLLECTIONS_PATH.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TOKEN = "hzel-demo-token"
HOSTS = 10000
ROUNDS = 5
FIELDS = ("id", "user_id", "hostname", "state", "cpu_cores", "memory_mb", "disk_gb", "created_at")


def call(url, method="GET", body=None, token=None):
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def timed(command, env):
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr.decode())
        raise SystemExit("%s failed" % " ".join(command))
    return elapsed, json.loads(completed.stdout)


def main():
    url = os.environ["EMULATOR_URL"]
    call(url + "/_emulator/reset", "POST")
    call(url + "/_emulator/seed", "POST", {"owner": "alice", "count": HOSTS, "prefix": "node-"})
    containers = call(url + "/api/v1/containers", token=TOKEN)["data"]
    env = dict(os.environ, HZEL_API_URL=url, HZEL_API_TOKEN=TOKEN, ANSIBLE_INVENTORY_UNPARSED_FAILED="true")
    with tempfile.TemporaryDirectory() as work:
        source = os.path.join(work, "fleet.hzel.yml")
        with open(source, "w", encoding="utf-8") as handle:
            handle.write("plugin: hzel.cloud.hzel\n")
        precomputed = os.path.join(work, "inventory.json")
        ordered = sorted(containers, key=lambda c: c["hostname"])
        with open(precomputed, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "hzel": {"hosts": [c["hostname"] for c in ordered]},
                    "_meta": {"hostvars": {c["hostname"]: {"hzel_" + f: c[f] for f in FIELDS} for c in ordered}},
                },
                handle,
            )
        script = os.path.join(work, "fleet.sh")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write("#!/bin/sh\nexec cat %s\n" % precomputed)
        os.chmod(script, 0o755)

        plugin_times, script_times = [], []
        for _round in range(ROUNDS):
            seconds, plugin_out = timed(["ansible-inventory", "-i", source, "--list"], env)
            plugin_times.append(seconds)
            seconds, script_out = timed(["ansible-inventory", "-i", script, "--list"], env)
            script_times.append(seconds)
    plugin_hosts = len(plugin_out["_meta"]["hostvars"])
    script_hosts = len(script_out["_meta"]["hostvars"])
    print("hosts: plugin %d, script %d (emulator holds %d)" % (plugin_hosts, script_hosts, len(containers)))
    print(
        "ansible-inventory --list via hzel.cloud.hzel: median %.2f s (%s)"
        % (statistics.median(plugin_times), ", ".join("%.2f" % t for t in plugin_times))
    )
    print(
        "ansible-inventory --list via script (floor):  median %.2f s (%s)"
        % (statistics.median(script_times), ", ".join("%.2f" % t for t in script_times))
    )
    print(
        "ratio plugin / script: %.3f (target <= 1.15)"
        % (statistics.median(plugin_times) / statistics.median(script_times))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
