#!/usr/bin/env python
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of reaching containers over SSH through the inventory plugin; prints figures, asserts nothing.

`ansible hzel -m ansible.builtin.ping -f 10` over 50 running containers of the hzel.cloud.hzel
inventory, reached with Ansible's ssh connection through the emulator's SSH gateway, against the
same ping of the same inventory with `ansible_connection=local`, as a ratio. Cold runs start with an
empty ControlPath directory (a new SSH connection per host); warm runs reuse the connections that
the previous run left open (ControlPersist), as a second play of a playbook does.

Needs EMULATOR_URL and EMULATOR_SSH_* (tools/bench.sh starts an emulator with its gateway) and the
collection on ANSIBLE_COLLECTIONS_PATH.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench_common import call

TOKEN = "hzel-demo-token"
CONTAINERS = 50
FORKS = 10
ROUNDS = 3

INVENTORY = """
plugin: hzel.cloud.hzel
state: [running]
filters:
  - hzel_hostname.startswith('bench-ssh-')
connection_vars:
  ansible_connection: ssh
  ansible_host: 127.0.0.1
  ansible_python_interpreter: %s
compose:
  ansible_user: hzel_hostname
"""


def api(method, path, body=None):
    return call(os.environ["EMULATOR_URL"] + path, method, body, TOKEN)["data"]


def running_fleet():
    call(os.environ["EMULATOR_URL"] + "/_emulator/reset", "POST")
    for index in range(1, CONTAINERS + 1):
        api("POST", "/api/v1/containers", {"hostname": "bench-ssh-%d" % index})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = [record["state"] for record in api("GET", "/api/v1/containers")]
        if states.count("running") == CONTAINERS:
            return
        time.sleep(0.2)
    sys.exit("the benchmark containers did not come up")


def ping(work, inventory, env, extra):
    started = time.monotonic()
    result = subprocess.run(
        ["ansible", "hzel", "-i", inventory, "-m", "ansible.builtin.ping", "-f", str(FORKS), "-o"] + extra,
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    succeeded = result.stdout.count("SUCCESS")
    if result.returncode != 0 or succeeded != CONTAINERS:
        sys.exit("ping failed (%d of %d hosts): %s" % (succeeded, CONTAINERS, (result.stdout + result.stderr)[-2000:]))
    return seconds


def main():
    running_fleet()
    with tempfile.TemporaryDirectory() as work:
        inventory = os.path.join(work, "bench.hzel.yml")
        with open(inventory, "w", encoding="utf-8") as handle:
            handle.write(INVENTORY % sys.executable)
        env = dict(
            os.environ,
            HZEL_API_URL=os.environ["EMULATOR_URL"],
            HZEL_API_TOKEN=TOKEN,
            ANSIBLE_REMOTE_PORT=os.environ["EMULATOR_SSH_PORT"],
            ANSIBLE_PRIVATE_KEY_FILE=os.environ["EMULATOR_SSH_KEY"],
            ANSIBLE_SSH_COMMON_ARGS="-o IdentitiesOnly=yes -o UserKnownHostsFile=%s"
            % os.environ["EMULATOR_SSH_KNOWN_HOSTS"],
        )
        cold, warm, local = [], [], []
        for round_number in range(ROUNDS):
            control = os.path.join(work, "cp-%d" % round_number)
            os.mkdir(control)
            ssh_env = dict(env, ANSIBLE_SSH_CONTROL_PATH_DIR=control)
            cold.append(ping(work, inventory, ssh_env, []))
            warm.append(ping(work, inventory, ssh_env, []))
            local.append(ping(work, inventory, env, ["-e", "ansible_connection=local"]))
    cold_s, warm_s, local_s = statistics.median(cold), statistics.median(warm), statistics.median(local)
    print(
        "ansible hzel -m ping -f %d, %d containers of the hzel inventory, median of %d rounds"
        % (FORKS, CONTAINERS, ROUNDS)
    )
    print("  over SSH through the gateway, cold: %.2f s (%s)" % (cold_s, ", ".join("%.2f" % s for s in cold)))
    print("  over SSH through the gateway, warm: %.2f s (%s)" % (warm_s, ", ".join("%.2f" % s for s in warm)))
    print("  ansible_connection=local:           %.2f s (%s)" % (local_s, ", ".join("%.2f" % s for s in local)))
    print("  ratio SSH / local: cold %.2f, warm %.2f" % (cold_s / local_s, warm_s / local_s))


if __name__ == "__main__":
    main()
