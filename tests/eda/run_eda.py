# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The 'eda' stage: hzel.cloud.hzel_events and the collection's rulebooks on the real ansible-rulebook,
against the emulator.

Usage: run_eda.py --venv DIR --emulator URL --collections DIR --work DIR [scenario ...]
The collection must be importable from DIR/ansible_collections/hzel/cloud. Prints one line per scenario
and the delay figures; exits 1 naming the first scenario that failed, with the end of its output.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
TOKEN = "hzel-demo-token"
# How long a wait may last before the scenario fails as hung; no check is about time.
GUARD = 120
MARKER_FILE = "owned-by-an-event"
ACTIVE = ("running", "provisioning")
EVENT_LINE = re.compile(r"HZEL-EVENT (\{.*\})\s*$")
HEADER = re.compile(r"^\*\* (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \[debug\]")


class Failure(Exception):
    pass


class Emulator:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def api(self, method, path, token=TOKEN, body=None):
        reply = requests.request(
            method,
            self.url + "/api/v1" + path,
            json=body,
            headers={"Authorization": "Bearer %s" % token},
            timeout=30,
        )
        reply.raise_for_status()
        return reply.json()["data"]

    def control(self, method, path, body=None):
        reply = requests.request(method, self.url + "/_emulator/" + path, json=body, timeout=30)
        reply.raise_for_status()
        return reply.json() if reply.content else None

    def reset(self):
        self.control("POST", "reset")
        self.control("PUT", "settings", {"provision_seconds": 0.5})

    def faults(self, *rules):
        self.control("PUT", "faults", {"faults": list(rules)})

    def requests_of(self, key):
        return self.control("GET", "stats")["by_request"].get(key, 0)

    def create(self, hostname):
        return self.api("POST", "/containers", body={"hostname": hostname})

    def power(self, container_id, action):
        return self.api("POST", "/containers/%s/%s" % (container_id, action))


class Rulebook:
    """ansible-rulebook in a subprocess; its debug lines HZEL-EVENT {...} are the events it received."""

    def __init__(self, options, name, rulebook, variables, inventory=None, token=TOKEN):
        self.name = name
        self.work = Path(options.work) / name
        self.work.mkdir(parents=True, exist_ok=True)
        variables_file = self.work / "vars.json"
        variables_file.write_text(json.dumps(variables))
        if inventory is None:  # a localhost of this Python, for playbooks of the stage's own
            inventory = self.work / "inventory.yml"
            inventory.write_text(
                "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
                "      ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n"
            )
        venv_bin = os.path.join(options.venv, "bin")
        self.env = dict(
            os.environ,
            PATH=venv_bin + os.pathsep + os.environ["PATH"],
            ANSIBLE_COLLECTIONS_PATH=options.collections,
            HZEL_API_URL=options.emulator,
            HZEL_API_TOKEN=token,
            ANSIBLE_LOCAL_TEMP=str(self.work / "tmp"),
            ANSIBLE_NOCOLOR="1",
            # A controller whose default Python cannot run the modules: an inventory's localhost must name
            # the Python that runs Ansible (an implicit localhost does so by itself).
            ANSIBLE_PYTHON_INTERPRETER=str(self.work / "no-such-python"),
        )
        self.command = [
            os.path.join(venv_bin, "ansible-rulebook"),
            "-r",
            str(rulebook),
            "-i",
            str(inventory),
            "--vars",
            str(variables_file),
            "--shutdown-delay",
            "1",
        ]
        self.lines = []
        self.events = []
        self.process = None
        self.reader = None

    def __enter__(self):
        self.output = open(self.work / "output.txt", "w")
        self.process = subprocess.Popen(
            self.command,
            cwd=self.work,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(10)
        self.output.close()

    def _read(self):
        last_header = None
        for line in self.process.stdout:
            self.output.write(line)
            self.output.flush()
            self.lines.append(line)
            header = HEADER.match(line)
            if header:
                last_header = datetime.strptime(header.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
                continue
            found = EVENT_LINE.search(line)
            if found:
                self.events.append((last_header or time.time(), json.loads(found.group(1))))

    def tail(self, count=40):
        return "".join(self.lines[-count:])

    def wait_for(self, what, predicate):
        deadline = time.monotonic() + GUARD
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.process.poll() is not None:
                time.sleep(0.5)  # let the reader take the last lines
                if predicate():
                    return
                raise Failure(
                    "%s: ansible-rulebook ended (code %s) before %s" % (self.name, self.process.returncode, what)
                )
            time.sleep(0.05)
        raise Failure("%s: no %s within %ds" % (self.name, what, GUARD))

    def wait_for_event(self, kind, hostname=None, state=None, since=0):
        def seen():
            return self.find(kind, hostname, state, since) is not None

        self.wait_for("%s event for %s" % (kind, hostname or "the API"), seen)
        return self.find(kind, hostname, state, since)

    def find(self, kind, hostname=None, state=None, since=0):
        for index, (stamp, event) in enumerate(self.events[since:], since):
            container = event.get("container") or {}
            if event["type"] == kind and container.get("hostname") == hostname:
                if state is None or container.get("state") == state:
                    return index, stamp, event
        return None


def check(condition, message):
    if not condition:
        raise Failure(message)


def shipped_localhost(options):
    """The collection's own inventory for the rulebooks whose playbooks run on localhost."""
    inventory = Path(options.collections) / "ansible_collections" / "hzel" / "cloud" / "examples" / "localhost.yml"
    if not inventory.is_file():
        raise Failure("the collection ships no %s" % inventory)
    return inventory


def record_rulebook(options, name, **source):
    variables = {
        "startup_events": "none",
        "thresholds": {},
        "poll_failures": 3,
        "hostnames": ["*"],
    }
    variables.update(source)
    return Rulebook(options, name, HERE / "rulebooks" / "record_events.yml", variables)


def wait_until_polling(rulebook, emulator, polls=1):
    start = emulator.requests_of("GET /api/v1/containers")
    rulebook.wait_for(
        "poll of the container list", lambda: emulator.requests_of("GET /api/v1/containers") >= start + polls
    )


# --- scenarios ----------------------------------------------------------------------------------------
def scenario_events(options, emulator):
    """created, a threshold, stopped, failed: each seen once, in order; then the delay of 20 changes."""
    emulator.reset()
    with record_rulebook(options, "events", thresholds={"memory_percent": 10}) as rulebook:
        wait_until_polling(rulebook, emulator)
        web = emulator.create("web-1")
        created = rulebook.wait_for_event("created", "web-1")
        exceeded = rulebook.wait_for_event("threshold_exceeded", "web-1")
        emulator.power(web["id"], "stop")
        stopped = rulebook.wait_for_event("state_changed", "web-1", "stopped")
        emulator.create("fail-1")
        failed = rulebook.wait_for_event("failed", "fail-1")
        order = [created[0], exceeded[0], stopped[0], failed[0]]
        check(order == sorted(order), "events: out of order: %s" % rulebook.events)
        check(stopped[2]["previous_state"] == "running", "events: stopped event without previous_state running")
        check(exceeded[2]["metric"] == "memory_percent", "events: threshold event for the wrong metric")
        # Exactly one event per change: no (type, container, state) twice.
        keys = [
            (e["type"], (e.get("container") or {}).get("id"), (e.get("container") or {}).get("state"))
            for _stamp, e in rulebook.events
        ]
        check(len(keys) == len(set(keys)), "events: an event was emitted twice: %s" % keys)
        # The delay from a change to its event, over 20 changes.
        delays = []
        for number in range(20):
            action, state = ("start", "running") if number % 2 == 0 else ("stop", "stopped")
            since = len(rulebook.events)
            # At a random point of the poll cycle: a change right after an event would always wait a whole interval.
            time.sleep(random.uniform(0, 1))
            emulator.power(web["id"], action)
            changed_at = time.time()
            stamp = rulebook.wait_for_event("state_changed", "web-1", state, since)[1]
            delays.append(stamp - changed_at)
        kinds = ", ".join(
            "%s %s" % (e["type"], (e.get("container") or {}).get("hostname")) for _stamp, e in rulebook.events[:6]
        )
        print("  events in order: %s, ..." % kinds)
        print(
            "  delay from a change to its event at interval 1, over %d changes: median %.2fs, worst %.2fs"
            % (len(delays), statistics.median(delays), max(delays))
        )


def scenario_restart(options, emulator):
    """hzel.cloud.restart_on_threshold restarts the container over the threshold, and only it, once."""
    emulator.reset()
    big = emulator.create("big-1")
    other = emulator.create("small-1")
    for container in (big, other):
        emulator.power(container["id"], "start")
    inventory = Path(options.work) / "restart.hzel.yml"
    inventory.parent.mkdir(parents=True, exist_ok=True)
    inventory.write_text("plugin: hzel.cloud.hzel\n")
    variables = {
        "hzel_events_interval": 1,
        "hzel_events_hostnames": ["big-*"],
        "hzel_restart_memory_percent": 10,
        "hzel_restart_margin": 5,
    }
    restarts = "POST /api/v1/containers/%s/restart"
    with Rulebook(options, "restart", "hzel.cloud.restart_on_threshold", variables, inventory=inventory) as rulebook:
        rulebook.wait_for("restart of big-1 through the API", lambda: emulator.requests_of(restarts % big["id"]) >= 1)
        # Some polls more: the reading stays over the threshold, which is not a new crossing.
        wait_until_polling(rulebook, emulator, polls=3)
        rulebook.wait_for("end of the power playbook", lambda: any("PLAY RECAP" in line for line in rulebook.lines))
    check(emulator.requests_of(restarts % big["id"]) == 1, "restart: big-1 was restarted more than once")
    check(emulator.requests_of(restarts % other["id"]) == 0, "restart: a container outside the rule was restarted")
    check(emulator.api("GET", "/containers/%s" % big["id"])["state"] == "running", "restart: big-1 is not running")
    check(
        any(re.search(r"big-1 is running", line) for line in rulebook.lines),
        "restart: the power playbook did not report big-1",
    )
    print("  hzel.cloud.restart_on_threshold restarted big-1 once through hzel.cloud.power (POST .../restart: 1)")


def scenario_restart_by_id(options, emulator):
    """A container named after an inventory group crosses the threshold: it restarts, and no host of the group."""
    emulator.reset()
    named_like_group = emulator.create("web")
    members = [emulator.create("web-1"), emulator.create("web-2")]
    for container in [named_like_group] + members:
        emulator.power(container["id"], "start")
    # The group web holds web-1 and web-2; the container named web is no host of this inventory at all.
    inventory = Path(options.work) / "restart-by-id.hzel.yml"
    inventory.parent.mkdir(parents=True, exist_ok=True)
    inventory.write_text("plugin: hzel.cloud.hzel\ngroups:\n  web: hzel_hostname.startswith('web-')\n")
    variables = {
        "hzel_events_interval": 1,
        "hzel_events_hostnames": ["web"],
        "hzel_restart_memory_percent": 10,
        "hzel_restart_margin": 5,
    }
    restarts = "POST /api/v1/containers/%s/restart"
    with Rulebook(
        options, "restart-by-id", "hzel.cloud.restart_on_threshold", variables, inventory=inventory
    ) as rulebook:
        rulebook.wait_for(
            "restart of web through the API", lambda: emulator.requests_of(restarts % named_like_group["id"]) >= 1
        )
        rulebook.wait_for("end of the power playbook", lambda: any("PLAY RECAP" in line for line in rulebook.lines))
    check(emulator.requests_of(restarts % named_like_group["id"]) == 1, "restart-by-id: web was not restarted once")
    for member in members:
        check(
            emulator.requests_of(restarts % member["id"]) == 0,
            "restart-by-id: %s, a host of the group web, was restarted" % member["hostname"],
        )
    check(any("web is running (restarted)" in line for line in rulebook.lines), "restart-by-id: no report of web")
    print("  a container named after the group web restarted by its id; web-1 and web-2 (the group) left alone")


def scenario_restart_throttle(options, emulator):
    """restart_on_threshold restarts a container once per period, however often it crosses again; others still."""
    emulator.reset()
    first = emulator.create("hot-1")
    second = emulator.create("hot-2")
    emulator.power(first["id"], "start")
    emulator.power(second["id"], "stop")
    variables = {
        "hzel_events_interval": 1,
        "hzel_events_hostnames": ["hot-*"],
        "hzel_restart_memory_percent": 10,
        "hzel_restart_margin": 5,
    }
    restarts = "POST /api/v1/containers/%s/restart"
    metrics = "GET /api/v1/containers/%s/metrics"
    with Rulebook(
        options, "restart-throttle", "hzel.cloud.restart_on_threshold", variables, inventory=shipped_localhost(options)
    ) as rulebook:
        rulebook.wait_for("restart of hot-1", lambda: emulator.requests_of(restarts % first["id"]) >= 1)
        # hot-1 stops (its reading starts afresh) and runs again: a second crossing, within the period.
        emulator.power(first["id"], "stop")
        wait_until_polling(rulebook, emulator, polls=2)
        emulator.power(first["id"], "start")
        read = emulator.requests_of(metrics % first["id"])
        rulebook.wait_for(
            "a reading of hot-1 running again", lambda: emulator.requests_of(metrics % first["id"]) > read
        )
        # Then hot-2 crosses: the rule's actions run in order, so once hot-2 has restarted, a second restart of
        # hot-1 would already have been made.
        emulator.power(second["id"], "start")
        rulebook.wait_for("restart of hot-2", lambda: emulator.requests_of(restarts % second["id"]) >= 1)
        rulebook.wait_for(
            "end of both power playbooks", lambda: sum("PLAY RECAP" in line for line in rulebook.lines) >= 2
        )
    check(emulator.requests_of(restarts % first["id"]) == 1, "restart-throttle: hot-1 was restarted again")
    check(emulator.requests_of(restarts % second["id"]) == 1, "restart-throttle: hot-2 was not restarted once")
    print("  hot-1 crossed the threshold twice and restarted once (once_within per container); hot-2 restarted")


def scenario_reconcile(options, emulator):
    """hzel.cloud.reconcile_fleet converges the fleet again when one of its containers stopped."""
    emulator.reset()
    keep = emulator.create("keep-1")
    emulator.power(keep["id"], "start")
    variables = {
        "hzel_events_interval": 1,
        "hzel_events_hostnames": ["keep-*"],
        "hzel_fleet_containers": [{"hostname": "keep-1", "state": "running"}],
    }
    starts = "POST /api/v1/containers/%s/start" % keep["id"]
    before = emulator.requests_of(starts)
    with Rulebook(
        options, "reconcile", "hzel.cloud.reconcile_fleet", variables, inventory=shipped_localhost(options)
    ) as rulebook:
        wait_until_polling(rulebook, emulator, polls=2)
        emulator.power(keep["id"], "stop")
        rulebook.wait_for("start of keep-1 through the API", lambda: emulator.requests_of(starts) > before)
        rulebook.wait_for("end of the provision playbook", lambda: any("PLAY RECAP" in line for line in rulebook.lines))
    check(emulator.api("GET", "/containers/%s" % keep["id"])["state"] == "running", "reconcile: keep-1 is not running")
    check(
        any(re.search(r"localhost +: ok=\d+ +changed=1 ", line) for line in rulebook.lines),
        "reconcile: the provision playbook did not change the fleet",
    )
    print("  hzel.cloud.reconcile_fleet started keep-1 again through hzel.cloud.provision after it stopped")


def scenario_reconcile_burst(options, emulator):
    """reconcile_fleet converges once for a burst of stopped containers (a throttle), not once per event."""
    emulator.reset()
    names = ["keep-1", "keep-2", "keep-3"]
    containers = {name: emulator.create(name) for name in names}
    for container in containers.values():
        emulator.power(container["id"], "start")
    variables = {
        "hzel_events_interval": 1,
        "hzel_events_hostnames": ["keep-*"],
        "hzel_fleet_containers": [{"hostname": name, "state": "running"} for name in names],
    }
    starts = "POST /api/v1/containers/%s/start"

    def runs():
        return sum(line.startswith("PLAY [") for line in rulebook.lines)

    with Rulebook(
        options, "reconcile-burst", "hzel.cloud.reconcile_fleet", variables, inventory=shipped_localhost(options)
    ) as rulebook:
        wait_until_polling(rulebook, emulator, polls=2)
        before = {name: emulator.requests_of(starts % container["id"]) for name, container in containers.items()}
        for container in containers.values():
            emulator.power(container["id"], "stop")
        rulebook.wait_for("end of the converge", lambda: any("PLAY RECAP" in line for line in rulebook.lines))
        # Without the throttle, the other two events' converges are queued by now and start right after the
        # first: some polls more let them show.
        wait_until_polling(rulebook, emulator, polls=10)
    check(runs() == 1, "reconcile-burst: %d converges for three containers stopped at once, not 1" % runs())
    started = {name: emulator.requests_of(starts % c["id"]) - before[name] for name, c in containers.items()}
    check(started == {name: 1 for name in names}, "reconcile-burst: starts %s" % started)
    print("  three containers stopped at once: one converge (once_after) started all three")


def scenario_refused_token(options, emulator):
    """A refused token ends ansible-rulebook with a non-zero code, and the token is nowhere in its output."""
    emulator.reset()
    secret = "refused-Secret-token-31337"
    rulebook = Rulebook(
        options,
        "refused",
        HERE / "rulebooks" / "record_events.yml",
        {"startup_events": "none", "thresholds": {}, "poll_failures": 3, "hostnames": ["*"]},
        token=secret,
    )
    with rulebook:
        rulebook.wait_for("end of ansible-rulebook", lambda: rulebook.process.poll() is not None)
    output = "".join(rulebook.lines)
    check(rulebook.process.returncode != 0, "refused: ansible-rulebook ended with code 0")
    check("refused the api_token" in output, "refused: no message about the token:\n%s" % rulebook.tail())
    check(secret not in output, "refused: the token is in the output")
    check(secret[:10] not in output, "refused: part of the token is in the output")
    print(
        "  a refused token ends ansible-rulebook with code %d; the token is not in its output"
        % rulebook.process.returncode
    )


def scenario_poll_failures(options, emulator):
    """A burst of 503 gives one poll_failed, then one poll_recovered."""
    emulator.reset()
    emulator.faults({"kind": "status", "status": 503, "method": "GET", "path": "^/api/v1/containers$", "count": 4})
    with record_rulebook(options, "poll-failures", poll_failures=2) as rulebook:
        rulebook.wait_for_event("poll_recovered")
        wait_until_polling(rulebook, emulator, polls=2)
    kinds = [event["type"] for _stamp, event in rulebook.events]
    check(kinds == ["poll_failed", "poll_recovered"], "poll failures: events %s" % kinds)
    failed = rulebook.events[0][1]
    check(failed["status"] == 503 and failed["failures"] == 2, "poll failures: poll_failed carries %s" % failed)
    check(rulebook.events[1][1]["failures"] == 4, "poll failures: poll_recovered carries %s" % rulebook.events[1][1])
    print("  4 polls answered 503: one poll_failed (after 2), one poll_recovered (after 4)")


def scenario_hostile(options, emulator):
    """Template markers and malformed records from the API never reach a playbook."""
    emulator.reset()
    work = Path(options.work) / "hostile"
    record_dir = work / "recorded"
    record_dir.mkdir(parents=True, exist_ok=True)
    marker_path = work / MARKER_FILE
    marker = "{{ lookup('ansible.builtin.pipe', 'touch %s') }}" % marker_path

    def record(number, **fields):
        value = {
            "id": "01942cf7-0000-7000-8000-%012d" % number,
            "user_id": "01942cf6-0000-7000-8000-000000000001",
            "hostname": "safe-%d" % number,
            "state": "running",
            "cpu_cores": 1,
            "memory_mb": 512,
            "disk_gb": 18,
            "created_at": "2026-11-29T00:00:00Z",
        }
        value.update(fields)
        return value

    hostile_list = [
        record(1, note=marker),
        record(2, hostname=marker),
        record(3, state=marker),
        record(4, created_at=marker),
        record(5, id=marker),
        record(6, cpu_cores=marker),
        record(7, user_id="{% for x in range(3) %}x{% endfor %}"),
    ]
    emulator.faults(
        {
            "kind": "reply",
            "method": "GET",
            "path": "^/api/v1/containers$",
            "count": 3,
            "body": json.dumps({"data": hostile_list}),
        },
        {
            "kind": "reply",
            "method": "GET",
            "path": "^/api/v1/containers$",
            "count": 1,
            "status": 500,
            "body": json.dumps({"error": {"code": "INTERNAL_ERROR", "message": marker}}),
        },
    )
    variables = {"record_dir": str(record_dir), "record_playbook": str(HERE / "playbooks" / "record_event.yml")}
    with Rulebook(options, "hostile", HERE / "rulebooks" / "hostile.yml", variables) as rulebook:
        rulebook.wait_for(
            "four recorded events (observed, poll_failed, poll_recovered, vanished)",
            lambda: len(list(record_dir.glob("*.json"))) >= 4,
        )
    recorded = [json.loads(path.read_text()) for path in sorted(record_dir.glob("*.json"))]
    kinds = sorted(event["hzel"]["type"] for event in recorded)
    check(not marker_path.exists(), "hostile: a template in an event ran on the controller")
    check(kinds == ["observed", "poll_failed", "poll_recovered", "vanished"], "hostile: recorded %s" % kinds)
    text = json.dumps(recorded)
    check(not re.search(r"\{[{%#]", text), "hostile: a template marker reached a playbook: %s" % text)
    check("note" not in text, "hostile: a field outside the reference reached a playbook")
    hostnames = {e["hzel"]["container"]["hostname"] for e in recorded if "container" in e["hzel"]}
    check(hostnames == {"safe-1"}, "hostile: containers %s reached a playbook" % hostnames)
    check(
        any("skipped 6 container records" in line for line in rulebook.lines),
        "hostile: no warning about the skipped records",
    )
    print("  6 hostile records skipped with a warning, template markers in errors neutralised; nothing ran")


def scenario_autoscale(options, emulator):
    """hzel.cloud.autoscale closes the loop: failed members block; up, one step per cooldown, to max and no
    further; down after the stabilization window, one step per cooldown, to min and no further; an oscillating
    load never gives more than one action per cooldown."""
    emulator.reset()
    members = [emulator.create("as-%d" % index) for index in (1, 2)]
    for member in members:
        emulator.power(member["id"], "start")
    cooldown, stabilization = 6, 4
    variables = {
        "hzel_autoscale_pattern": "as-{index}",
        "hzel_autoscale_min": 2,
        "hzel_autoscale_max": 4,
        "hzel_autoscale_interval": 1,
        "hzel_autoscale_cooldown": cooldown,
        "hzel_autoscale_stabilization": stabilization,
        "hzel_autoscale_warmup": 0,
    }
    changes = []  # (monotonic time, active count) each time the count is seen to change

    def active():
        listed = emulator.api("GET", "/containers")
        count = sum(1 for item in listed if re.fullmatch(r"as-[0-9]+", item["hostname"]) and item["state"] in ACTIVE)
        if not changes or changes[-1][1] != count:
            changes.append((time.monotonic(), count))
        return count

    def load(cpu):
        emulator.control("POST", "metrics", {"hostname_pattern": "as-*", "cpu_percent": cpu, "jitter": False})

    def hold(seconds, expected):
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            check(active() == expected, "autoscale: the count left %d (%s)" % (expected, changes))
            time.sleep(0.2)

    def reach(count):
        rulebook.wait_for("%d active members" % count, lambda: active() == count)

    creates = "POST /api/v1/containers"
    # A failed member (as a list reply that adds one): the playbook refuses, changing nothing.
    listed = emulator.api("GET", "/containers")
    failed = dict(listed[0], id="01942cf7-0000-7000-8000-0000000000f9", hostname="as-9", state="failed")
    emulator.faults(
        {
            "kind": "reply",
            "method": "GET",
            "path": "^/api/v1/containers$",
            "body": json.dumps({"data": listed + [failed]}),
        }
    )
    load(90)
    with Rulebook(
        options, "autoscale", "hzel.cloud.autoscale", variables, inventory=shipped_localhost(options)
    ) as rulebook:
        rulebook.wait_for("the refusal", lambda: any("as-9" in line and "failed" in line for line in rulebook.lines))
        refused_at = time.monotonic()
        check(emulator.requests_of(creates) == 2, "autoscale: a create despite a failed member")
        emulator.faults()
        # Up, the next attempt a cooldown after the refused one; then one step per cooldown, to max 4.
        reach(3)
        check(changes[-1][0] - refused_at >= cooldown - 2, "autoscale: scaled up within the cooldown of the refusal")
        reach(4)
        hold(2 * cooldown + 2, 4)
        # Down, once the highest mean of the stabilization window is below low; one step per cooldown, to min 2.
        load(5)
        reach(3)
        reach(2)
        hold(2 * cooldown + 2, 2)
        # An oscillating load: never more than one action per cooldown, never outside [2, 4].
        oscillation_from = len(changes)
        for number in range(8):
            load(90 if number % 2 == 0 else 5)
            ends = time.monotonic() + 3
            while time.monotonic() < ends:
                check(2 <= active() <= 4, "autoscale: outside [2, 4] (%s)" % changes)
                time.sleep(0.2)
        rulebook.wait_for("the last playbook", lambda: sum("PLAY RECAP" in line for line in rulebook.lines) >= 1)
    steps = [later - earlier for (earlier, _a), (later, _b) in zip(changes, changes[1:])]
    check(all(step >= cooldown - 2 for step in steps), "autoscale: two actions within a cooldown (%s)" % changes)
    counts = [count for _at, count in changes]
    check(counts[:5] == [2, 3, 4, 3, 2], "autoscale: the counts went %s" % counts)
    print(
        "  failed member refused; 2 -> 3 -> 4 (max held), 4 -> 3 -> 2 (min held), %d actions while the load "
        "oscillated; the shortest time between two actions %.1fs (cooldown %ds)"
        % (len(changes) - oscillation_from, min(steps), cooldown)
    )


SCENARIOS = {
    "events": scenario_events,
    "restart": scenario_restart,
    "restart-by-id": scenario_restart_by_id,
    "restart-throttle": scenario_restart_throttle,
    "reconcile": scenario_reconcile,
    "reconcile-burst": scenario_reconcile_burst,
    "refused": scenario_refused_token,
    "poll-failures": scenario_poll_failures,
    "hostile": scenario_hostile,
    "autoscale": scenario_autoscale,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--venv", required=True)
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--collections", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    options = parser.parse_args()
    emulator = Emulator(options.emulator)
    failed = []
    for name in options.scenarios:
        started = time.monotonic()
        try:
            SCENARIOS[name](options, emulator)
        except Failure as failure:
            failed.append(name)
            print("FAIL  %s: %s" % (name, failure))
            output = Path(options.work) / name / "output.txt"
            if output.exists():
                print("      | " + "\n      | ".join(output.read_text().splitlines()[-40:]))
        else:
            print("ok    %s (%ds)" % (name, time.monotonic() - started))
        finally:
            emulator.faults()
    print("%d passed, %d failed" % (len(options.scenarios) - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
