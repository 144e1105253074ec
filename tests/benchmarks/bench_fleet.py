#!/usr/bin/env python
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of hzel_containers against a loop of hzel_container; prints figures, asserts nothing.

(a) 30 new containers with 2 s of provisioning: one hzel_containers task against a loop of 30
    hzel_container tasks, timed inside one playbook run, as a ratio (goal at most 0.10).
(b) An unchanged fleet of 1,000: the HTTP requests of one hzel_containers task (goal exactly 1), and its
    seconds against one unchanged hzel_container task, as a ratio (goal at most 1.5).

Needs EMULATOR_URL (tools/bench.sh starts an emulator) and the collection on ANSIBLE_COLLECTIONS_PATH.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request

TOKEN = "hzel-demo-token"
NEW = 30
UNCHANGED = 1000
PROVISION_SECONDS = 2.0
ROUNDS = 3

PLAYBOOK = """
- name: Benchmark
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  module_defaults:
    group/hzel.cloud.hzel:
      api_url: "{{ url }}"
      api_token: "{{ token }}"
  tasks:
    - name: Mark the start of the fleet task
      ansible.builtin.set_fact:
        t0: "{{ now(utc=true).timestamp() }}"
    - name: Thirty new containers in one task
      hzel.cloud.hzel_containers:
        containers: "{{ new_items }}"
        state: running
    - name: Mark the start of the loop
      ansible.builtin.set_fact:
        t1: "{{ now(utc=true).timestamp() }}"
    - name: Thirty new containers in a loop
      hzel.cloud.hzel_container:
        hostname: "{{ item }}"
        state: running
      loop: "{{ loop_fleet }}"
    - name: Mark the end of the loop
      ansible.builtin.set_fact:
        t2: "{{ now(utc=true).timestamp() }}"
    - name: Reset the request counter
      ansible.builtin.uri:
        url: "{{ url }}/_emulator/stats"
        method: DELETE
    - name: Mark the start of the unchanged fleet
      ansible.builtin.set_fact:
        t3: "{{ now(utc=true).timestamp() }}"
    - name: An unchanged fleet of a thousand
      hzel.cloud.hzel_containers:
        containers: "{{ big_items }}"
        state: running
      register: big
    - name: Mark the end of the unchanged fleet
      ansible.builtin.set_fact:
        t4: "{{ now(utc=true).timestamp() }}"
    - name: Read the request counter
      ansible.builtin.uri:
        url: "{{ url }}/_emulator/stats"
      register: big_stats
    - name: Mark the start of one unchanged container
      ansible.builtin.set_fact:
        t5: "{{ now(utc=true).timestamp() }}"
    - name: One unchanged container
      hzel.cloud.hzel_container:
        hostname: big-00000
        state: running
    - name: Mark the end of one unchanged container
      ansible.builtin.set_fact:
        t6: "{{ now(utc=true).timestamp() }}"
    - name: Report
      ansible.builtin.copy:
        dest: "{{ report }}"
        mode: "0600"
        content: "{{ {'fleet': t1 | float - t0 | float, 'loop': t2 | float - t1 | float,
                      'big': t4 | float - t3 | float, 'one': t6 | float - t5 | float,
                      'big_changed': big.changed, 'big_requests': big_stats.json.total} | to_json }}"
"""


def control(url, method, path, body=None):
    request = urllib.request.Request(
        url + "/_emulator" + path,
        method=method,
        data=json.dumps(body).encode() if body else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def main():
    url = os.environ["EMULATOR_URL"]
    control(url, "POST", "/reset")
    control(url, "POST", "/seed", {"owner": "alice", "count": UNCHANGED, "prefix": "big-"})
    control(url, "PUT", "/settings", {"provision_seconds": PROVISION_SECONDS})
    big_items = [{"hostname": "big-%05d" % number} for number in range(UNCHANGED)]
    rounds = []
    with tempfile.TemporaryDirectory() as work:
        playbook = os.path.join(work, "bench.yml")
        report = os.path.join(work, "report.json")
        extra = os.path.join(work, "extra.json")
        with open(playbook, "w", encoding="utf-8") as handle:
            handle.write(PLAYBOOK)
        for number in range(ROUNDS):
            with open(extra, "w", encoding="utf-8") as handle:
                json.dump(
                    {
                        "url": url,
                        "token": TOKEN,
                        "report": report,
                        "big_items": big_items,
                        "new_items": [{"hostname": "fleet-%d-%d" % (number, n)} for n in range(NEW)],
                        "loop_fleet": ["loop-%d-%d" % (number, n) for n in range(NEW)],
                    },
                    handle,
                )
            subprocess.run(["ansible-playbook", playbook, "-e", "@" + extra], check=True, stdout=subprocess.DEVNULL)
            with open(report, encoding="utf-8") as handle:
                rounds.append(json.load(handle))
    fleet = [r["fleet"] for r in rounds]
    loop = [r["loop"] for r in rounds]
    print("(a) %d new containers, %.0f s provisioning:" % (NEW, PROVISION_SECONDS))
    print(
        "    one hzel_containers task:     median %.2f s (%s)"
        % (statistics.median(fleet), ", ".join("%.2f" % v for v in fleet))
    )
    print(
        "    loop of hzel_container tasks: median %.2f s (%s)"
        % (statistics.median(loop), ", ".join("%.2f" % v for v in loop))
    )
    print(
        "    ratio fleet / loop: median %.3f (goal <= 0.10; per round: %s)"
        % (
            statistics.median([f / lp for f, lp in zip(fleet, loop)]),
            ", ".join("%.3f" % (f / lp) for f, lp in zip(fleet, loop)),
        )
    )
    big = [r["big"] for r in rounds]
    one = [r["one"] for r in rounds]
    print(
        "(b) unchanged fleet of %d: changed=%s, HTTP requests=%s (goal exactly 1)"
        % (UNCHANGED, rounds[0]["big_changed"], ", ".join(str(r["big_requests"]) for r in rounds))
    )
    print(
        "    one hzel_containers task: median %.2f s; one unchanged hzel_container task: median %.2f s"
        % (statistics.median(big), statistics.median(one))
    )
    print(
        "    ratio: median %.2f (goal <= 1.5; per round: %s)"
        % (statistics.median([b / o for b, o in zip(big, one)]), ", ".join("%.2f" % (b / o) for b, o in zip(big, one)))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
