#!/usr/bin/env python
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the autoscaling loop (rulebook hzel.cloud.autoscale on the real ansible-rulebook); prints figures.

- requests per poll for a group of 10 running members (the emulator's count over 10 polls);
- the time from the first poll that sees the group above high to the scale task's create, for 5 scale-ups
  (interval 1 s, cooldown 3 s, warmup 0): median and worst.

Needs EMULATOR_URL (tools/bench.sh starts an emulator), the collection under COLLECTIONS_DIR, and
ansible-rulebook with Java 17 in the virtualenv HZEL_EDA_VENV (the eda stage's .venv-eda).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench_common import call

TOKEN = "hzel-demo-token"
MEMBERS = 10
SCALE_UPS = 5
GUARD = 120


def members(url):
    listed = call(url + "/api/v1/containers", token=TOKEN)["data"]
    return [item for item in listed if item["hostname"].startswith("bench-") and item["state"] != "stopped"]


def list_polls(url):
    return call(url + "/_emulator/stats")["by_request"].get("GET /api/v1/containers", 0)


def wait(what, predicate):
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    sys.exit("no %s within %d s" % (what, GUARD))


def main():
    url = os.environ["EMULATOR_URL"]
    venv = os.environ["HZEL_EDA_VENV"]
    collections = os.environ["COLLECTIONS_DIR"]
    call(url + "/_emulator/reset", "POST")
    for number in range(1, MEMBERS + 1):
        created = call(url + "/api/v1/containers", "POST", {"hostname": "bench-%d" % number}, TOKEN)["data"]
        call("%s/api/v1/containers/%s/start" % (url, created["id"]), "POST", token=TOKEN)
    call(url + "/_emulator/metrics", "POST", {"hostname_pattern": "bench-*", "cpu_percent": 50, "jitter": False})
    work = tempfile.mkdtemp(prefix="hzel-bench-autoscale.")
    variables = os.path.join(work, "vars.json")
    with open(variables, "w", encoding="utf-8") as handle:
        json.dump(
            {
                "hzel_autoscale_pattern": "bench-{index}",
                "hzel_autoscale_min": 1,
                "hzel_autoscale_max": 100,
                "hzel_autoscale_interval": 1,
                "hzel_autoscale_cooldown": 3,
                "hzel_autoscale_stabilization": 600,
                "hzel_autoscale_warmup": 0,
            },
            handle,
        )
    inventory = os.path.join(collections, "ansible_collections", "hzel", "cloud", "examples", "localhost.yml")
    env = dict(
        os.environ,
        PATH=os.path.join(venv, "bin") + os.pathsep + os.environ["PATH"],
        ANSIBLE_COLLECTIONS_PATH=collections,
        HZEL_API_URL=url,
        HZEL_API_TOKEN=TOKEN,
    )
    command = [os.path.join(venv, "bin", "ansible-rulebook"), "-r", "hzel.cloud.autoscale", "-i", inventory]
    with open(os.path.join(work, "output.txt"), "w", encoding="utf-8") as output:
        rulebook = subprocess.Popen(
            command + ["--vars", variables], cwd=work, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            # Requests per poll, the load between low and high: the list and one metrics read per member.
            # Counted between two moments at the same point of a poll: just after its list request.
            first = wait("a poll", lambda: list_polls(url) >= 2 and call(url + "/_emulator/stats"))
            last = wait(
                "10 more polls",
                lambda: (
                    list_polls(url) >= first["by_request"]["GET /api/v1/containers"] + 10
                    and call(url + "/_emulator/stats")
                ),
            )
            polls = last["by_request"]["GET /api/v1/containers"] - first["by_request"]["GET /api/v1/containers"]
            print(
                "requests per poll, a group of %d running members: %.1f (the list and one metrics read per member)"
                % (MEMBERS, (last["total"] - first["total"]) / float(polls))
            )
            delays = []
            for _number in range(SCALE_UPS):
                before = len(members(url))
                time.sleep(3.5)  # the cooldown of the last action is over
                polls = list_polls(url)
                call(url + "/_emulator/metrics", "POST", {"hostname_pattern": "bench-*", "cpu_percent": 90})
                wait("a poll that sees the load", lambda polls=polls: list_polls(url) > polls)
                seen_at = time.monotonic()
                wait("the scale-up", lambda before=before: len(members(url)) > before)
                delays.append(time.monotonic() - seen_at)
                call(url + "/_emulator/metrics", "POST", {"hostname_pattern": "bench-*", "cpu_percent": 50})
        finally:
            rulebook.terminate()
            rulebook.wait(30)
    print(
        "from the first poll above high to the scale task's create, %d scale-ups: median %.1fs, worst %.1fs "
        "(a poll every 1 s; most of it is ansible-playbook starting and reading the group)"
        % (len(delays), statistics.median(delays), max(delays))
    )


if __name__ == "__main__":
    main()
