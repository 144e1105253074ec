#!/usr/bin/env python
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of a play limited to one host of an inventory of 10,000 containers; prints figures, asserts nothing.

`ansible-playbook` of a one-task play (gather_facts false, a debug on hosts: all, --limit to one host) with
the hosts of hzel.cloud.hzel against two inventories of the same hosts and variables: a static YAML file
(`ansible-inventory --list --yaml --export` of the plugin's) and a script that prints the plugin's JSON
(`ansible-inventory --list`). Goals: at most 0.11x the static YAML, and at most 1.0x the script. Each core
(ansible-core in .venv-cores/, BENCH_CORES, by default 2.17.14 and 2.22.0rc1) runs the three in turns,
BENCH_ROUNDS times (3 by default); the figures are the worst of the runs (and the median).

The API is the list endpoint of bench_inventory.py's server on 127.0.0.1. Needs the collection on
ANSIBLE_COLLECTIONS_PATH (tools/bench.sh puts it there).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench_inventory import HOSTS, TOKEN

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORES = os.environ.get("BENCH_CORES", "2.17.14 2.22.0rc1").split()
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PLAY = """- name: One task on one host
  hosts: all
  gather_facts: false
  tasks:
    - name: Say which host
      ansible.builtin.debug:
        msg: "{{ inventory_hostname }} has {{ hzel_cpu_cores }} cores"
"""
LIMIT = "node-%05d" % (HOSTS // 2)


def run(command, env, output=None):
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout.decode()[-2000:] + completed.stderr.decode()[-2000:])
        raise SystemExit("%s failed" % " ".join(command))
    if output is not None:
        with open(output, "wb") as handle:
            handle.write(completed.stdout)
    return elapsed, completed.stdout


def one_core(core, url, work):
    binary = os.path.join(ROOT, ".venv-cores", core, "bin")
    if not os.path.isdir(binary):
        print("ansible-core %s: no virtualenv at %s; skipped" % (core, binary))
        return
    env = dict(os.environ, HZEL_API_TOKEN=TOKEN, ANSIBLE_INVENTORY_UNPARSED_FAILED="true")
    env["PATH"] = binary + os.pathsep + env.get("PATH", "")
    source = os.path.join(work, "fleet.hzel.yml")
    static = os.path.join(work, "static-%s.yml" % core)
    listed = os.path.join(work, "listed-%s.json" % core)
    script = os.path.join(work, "fleet-%s.sh" % core)
    run(["ansible-inventory", "-i", source, "--list", "--yaml", "--export"], env, static)
    run(["ansible-inventory", "-i", source, "--list"], env, listed)
    with open(script, "w", encoding="utf-8") as handle:
        handle.write("#!/bin/sh\nexec cat %s\n" % listed)
    os.chmod(script, 0o755)
    play = os.path.join(work, "play.yml")
    inventories = {"hzel.cloud.hzel": source, "static YAML": static, "script": script}
    seconds = {name: [] for name in inventories}
    for _round in range(ROUNDS):
        for name, inventory in inventories.items():
            elapsed, out = run(["ansible-playbook", "-i", inventory, play, "--limit", LIMIT], env)
            if b"ok=1" not in out or LIMIT.encode() not in out:
                raise SystemExit("%s: the play did not run its one task on %s" % (name, LIMIT))
            seconds[name].append(elapsed)
    worst = {name: max(times) for name, times in seconds.items()}
    print(
        "ansible-core %s: ansible-playbook --limit %s, %d hosts, worst (median) of %d:" % (core, LIMIT, HOSTS, ROUNDS)
    )
    for name, times in seconds.items():
        print(
            "  %-16s %6.2f s (%.2f)  runs %s"
            % (name, worst[name], statistics.median(times), ", ".join("%.2f" % t for t in times))
        )
    ours = worst["hzel.cloud.hzel"]
    print(
        "  ratio to static YAML %.2f (goal at most 0.11), to the script %.2f (goal at most 1.0)"
        % (ours / worst["static YAML"], ours / worst["script"])
    )


def main():
    server = subprocess.Popen(
        [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_inventory.py"), "--serve"]
        + [str(HOSTS), "0.02"],
        stdout=subprocess.PIPE,
    )
    try:
        url = "http://127.0.0.1:%d" % int(server.stdout.readline())
        with tempfile.TemporaryDirectory() as work:
            with open(os.path.join(work, "fleet.hzel.yml"), "w", encoding="utf-8") as handle:
                handle.write("plugin: hzel.cloud.hzel\napi_url: %s\n" % url)
            with open(os.path.join(work, "play.yml"), "w", encoding="utf-8") as handle:
                handle.write(PLAY)
            for core in CORES:
                one_core(core, url, work)
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
