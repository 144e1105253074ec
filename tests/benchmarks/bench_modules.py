#!/usr/bin/env python
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of hzel_container against the emulator; prints figures, asserts nothing.

1. The HTTP requests that an unchanged hzel_container run sends (counted by the emulator).
2. How long after a 1-second provisioning ends a create with wait=true returns (the poll overshoot):
   the create task's seconds less the provisioning and less one unchanged task's seconds.
3. The seconds of an unchanged loop of 20 hzel_container tasks against the same loop of
   ansible.builtin.uri GETs of the container list, timed inside one playbook run, as a ratio.

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
LOOP = 20
ROUNDS = 5
PROVISION_SECONDS = 1.0

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
    - name: Ensure the container exists
      hzel.cloud.hzel_container:
        hostname: bench-1
        state: running
    - name: Reset the request counter
      ansible.builtin.uri:
        url: "{{ url }}/_emulator/stats"
        method: DELETE
    - name: One unchanged run
      hzel.cloud.hzel_container:
        hostname: bench-1
        state: running
      register: single
    - name: Read the request counter
      ansible.builtin.uri:
        url: "{{ url }}/_emulator/stats"
      register: single_stats
    - name: Mark the start of the module loop
      ansible.builtin.set_fact:
        module_start: "{{ now(utc=true).timestamp() }}"
    - name: Unchanged loop of hzel_container
      hzel.cloud.hzel_container:
        hostname: bench-1
        state: running
      loop: "{{ range(loop_size | int) | list }}"
    - name: Mark the start of the uri loop
      ansible.builtin.set_fact:
        module_end: "{{ now(utc=true).timestamp() }}"
    - name: Loop of uri GETs of the list
      ansible.builtin.uri:
        url: "{{ url }}/api/v1/containers"
        headers:
          Authorization: "Bearer {{ token }}"
      loop: "{{ range(loop_size | int) | list }}"
    - name: Provisioning takes one second
      ansible.builtin.uri:
        url: "{{ url }}/_emulator/settings"
        method: PUT
        body_format: json
        body:
          provision_seconds: "{{ provision_seconds | float }}"
    - name: Mark the start of the create
      ansible.builtin.set_fact:
        create_start: "{{ now(utc=true).timestamp() }}"
    - name: Create and wait
      hzel.cloud.hzel_container:
        hostname: "bench-wait-{{ round }}"
    - name: Mark the end of the create
      ansible.builtin.set_fact:
        create_end: "{{ now(utc=true).timestamp() }}"
    - name: Report
      ansible.builtin.copy:
        dest: "{{ report }}"
        mode: "0600"
        content: "{{ {'changed': single.changed, 'requests': single_stats.json,
                      'module_seconds': module_end | float - module_start | float,
                      'uri_seconds': create_start | float - module_end | float,
                      'create_seconds': create_end | float - create_start | float} | to_json }}"
"""


def main():
    url = os.environ["EMULATOR_URL"]
    urllib.request.urlopen(urllib.request.Request(url + "/_emulator/reset", method="POST"))
    rounds = []
    with tempfile.TemporaryDirectory() as work:
        playbook = os.path.join(work, "bench.yml")
        report = os.path.join(work, "report.json")
        with open(playbook, "w", encoding="utf-8") as handle:
            handle.write(PLAYBOOK)
        for number in range(ROUNDS):
            subprocess.run(
                [
                    "ansible-playbook",
                    playbook,
                    "-e",
                    json.dumps(
                        {
                            "url": url,
                            "token": TOKEN,
                            "report": report,
                            "loop_size": LOOP,
                            "round": number,
                            "provision_seconds": PROVISION_SECONDS,
                        }
                    ),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            with open(report, encoding="utf-8") as handle:
                rounds.append(json.load(handle))
    first = rounds[0]
    print(
        "unchanged hzel_container run: changed=%s, HTTP requests=%d %s"
        % (first["changed"], first["requests"]["total"], json.dumps(first["requests"]["by_request"]))
    )
    module = [r["module_seconds"] for r in rounds]
    uri = [r["uri_seconds"] for r in rounds]
    ratios = [m / u for m, u in zip(module, uri)]
    print(
        "loop of %d unchanged hzel_container tasks: median %.3f s (%s)"
        % (LOOP, statistics.median(module), ", ".join("%.3f" % v for v in module))
    )
    print(
        "loop of %d ansible.builtin.uri GETs:        median %.3f s (%s)"
        % (LOOP, statistics.median(uri), ", ".join("%.3f" % v for v in uri))
    )
    overshoot = [r["create_seconds"] - PROVISION_SECONDS - r["module_seconds"] / LOOP for r in rounds]
    print(
        "create with wait: returns %.3f s after a %.1f s provisioning ends (median; per round: %s)"
        % (statistics.median(overshoot), PROVISION_SECONDS, ", ".join("%.3f" % v for v in overshoot))
    )
    print(
        "ratio hzel_container / uri: median %.2f (per round: %s)"
        % (statistics.median(ratios), ", ".join("%.2f" % v for v in ratios))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
