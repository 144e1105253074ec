# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks of the 'ee' stage (tools/ee.sh): hzel.cloud inside its execution environment as AWX runs it,
against the emulator on the host (every container runs with --network host).

1. provision: hzel.cloud.provision through ansible-runner transmit | podman run -i EE ansible-runner worker |
   ansible-runner process (the pipeline of AWX's receptor), with the credential injected as the shipped AWX
   credential type injects it; checked through the API and the job events. A second run changes nothing.
2. inventory: the inventory update as AWX runs it (ansible-inventory --list --export in the EE): every state,
   plain values (no __ansible_unsafe), hzel_state for enabled_var.
3. configure: a configure play over SSH (the emulator's SSH gateway) from inside the EE, on the enabled hosts of
   that inventory, with the SSH key as a Machine credential gives it (ansible-runner's ssh_key: ssh-agent).
4. navigator: ansible-navigator run --ee true of one playbook.
5. decision environment: hzel.cloud.notify_failed on ansible-rulebook inside the DE; one failed event.
Prints one line per check; exits 1 at the first that fails, with the end of its output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import jinja2
import requests
import yaml

HERE = Path(__file__).resolve().parent
TOKEN = "hzel-demo-token"
GUARD = 300  # seconds a step may take before it counts as hung; no check is about time
FLEET = ["web-1", "web-2", "db-1"]


class Failure(Exception):
    pass


def check(condition, message, output=""):
    if not condition:
        raise Failure(message + ("\n" + output[-4000:] if output else ""))


def run(command, **kwargs):
    return subprocess.run(command, capture_output=True, text=True, timeout=GUARD, check=False, **kwargs)


class Stage:
    def __init__(self, options):
        self.o = options
        self.work = Path(options.work)
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.root = Path(options.root)
        self.project = self.root / "docs" / "awx" / "project"
        self.host_bin = Path(sys.executable).parent

    # --- the API and the credential ------------------------------------------------------------------
    def api(self, method, path, body=None):
        reply = requests.request(
            method,
            self.o.emulator + "/api/v1" + path,
            json=body,
            headers={"Authorization": "Bearer %s" % TOKEN},
            timeout=30,
        )
        reply.raise_for_status()
        return reply.json()["data"]

    def containers(self):
        return {record["hostname"]: record for record in self.api("GET", "/containers")}

    def credential_env(self):
        """The environment AWX gives a job from a credential of the shipped type: its injectors, rendered."""
        kind = yaml.safe_load((self.root / "docs" / "awx" / "credential_type.yml").read_text())
        inputs = {"hzel_api_url": self.o.emulator, "hzel_api_token": TOKEN}
        for field in kind["inputs"]["fields"]:
            inputs.setdefault(field["id"], field.get("default", ""))
        missing = [name for name in kind["inputs"].get("required", []) if not inputs.get(name)]
        check(not missing, "credential: required inputs missing: %s" % missing)
        env = jinja2.Environment(undefined=jinja2.StrictUndefined)
        return {name: env.from_string(value).render(**inputs) for name, value in kind["injectors"]["env"].items()}

    # --- ansible-runner's worker pipeline -------------------------------------------------------------
    def job(self, name, playbook, files, envvars, extravars=None, inventory=None, ssh_key=None):
        """A job as AWX runs it: a private data dir streamed by ansible-runner transmit into
        'ansible-runner worker' in the EE, its events processed by ansible-runner process on the host.
        Returns (status, events)."""
        private = self.work / name / "private"
        project = private / "project"
        project.mkdir(parents=True)
        for target, source in files.items():
            (project / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, project / target)
        (private / "env").mkdir()
        (private / "env" / "envvars").write_text(json.dumps(envvars))
        (private / "env" / "extravars").write_text(json.dumps(extravars or {}))
        if ssh_key:
            (private / "env" / "ssh_key").write_text(Path(ssh_key).read_text())
        if inventory is not None:  # the stored inventory, as AWX hands it to a job: a script printing its JSON
            (private / "inventory").mkdir()
            self.write_script(private / "inventory" / "hosts", inventory)
        else:
            (private / "inventory").mkdir()
            (private / "inventory" / "hosts").write_text(
                "localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n"
            )
        processed = self.work / name / "processed"
        processed.mkdir()
        runner = str(self.host_bin / "ansible-runner")
        transmit = subprocess.Popen(
            [runner, "transmit", str(private), "-p", playbook, "--ident", name], stdout=subprocess.PIPE
        )
        worker = subprocess.Popen(
            [
                "podman",
                "run",
                "--rm",
                "-i",
                "--network",
                "host",
                self.o.ee,
                "ansible-runner",
                "worker",
                "--private-data-dir=/runner",
            ],
            stdin=transmit.stdout,
            stdout=subprocess.PIPE,
            stderr=open(self.work / name / "worker.stderr", "w"),
        )
        transmit.stdout.close()
        process = subprocess.run(
            [runner, "process", str(processed)],
            stdin=worker.stdout,
            capture_output=True,
            text=True,
            timeout=GUARD,
            check=False,
        )
        worker.wait(GUARD)
        transmit.wait(GUARD)
        artifacts = processed / "artifacts"
        stdout = (artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else ""
        detail = process.stdout + process.stderr + (self.work / name / "worker.stderr").read_text() + stdout
        check(
            worker.returncode == 0 and process.returncode == 0,
            "%s: the pipeline failed (worker %s, process %s)" % (name, worker.returncode, process.returncode),
            detail,
        )
        check((artifacts / "status").exists(), "%s: no status in the processed artifacts" % name, detail)
        events = [json.loads(path.read_text()) for path in sorted((artifacts / "job_events").glob("*.json"))]
        events.sort(key=lambda event: event.get("counter", 0))
        return (artifacts / "status").read_text().strip(), events, stdout

    @staticmethod
    def stats(events):
        found = [event["event_data"] for event in events if event.get("event") == "playbook_on_stats"]
        return found[-1] if found else {}

    # --- the checks ------------------------------------------------------------------------------------
    def provision(self):
        env = self.credential_env()
        files = {"site.yml": self.project / "site.yml"}
        fleet = {"hzel_fleet_containers": [{"hostname": name} for name in FLEET]}
        status, events, stdout = self.job("provision", "site.yml", files, env, fleet)
        check(status == "successful", "provision: job status %s" % status, stdout)
        made = self.containers()
        check(sorted(made) == sorted(FLEET), "provision: the API lists %s, not %s" % (sorted(made), FLEET))
        check(all(made[name]["state"] == "running" for name in FLEET), "provision: not all running: %s" % made)
        changed = self.stats(events).get("changed", {})
        check(changed.get("localhost", 0) >= 1, "provision: the job events count no change: %s" % changed, stdout)
        status, events, stdout = self.job("provision-again", "site.yml", files, env, fleet)
        again = self.stats(events).get("changed", {})
        check(
            status == "successful" and not again.get("localhost"),
            "provision: a second run changed something: %s %s" % (status, again),
            stdout,
        )
        print(
            "PASS provision through ansible-runner transmit | worker (in the EE) | process: job successful, "
            "%d containers in the API, changed=%d, then changed=0" % (len(made), changed["localhost"])
        )

    def inventory(self):
        # one container stopped: it stays in the inventory, as a disabled host (enabled_var: hzel_state)
        stopped = self.containers()["db-1"]
        self.api("POST", "/containers/%s/stop" % stopped["id"])
        self.control("DELETE", "stats")
        data = self.sync(self.project / "inventories", "fleet.hzel.yml")
        requests_made = self.control("GET", "stats")["by_request"]
        check(requests_made == {"GET /api/v1/containers": 1}, "inventory: the sync made %s" % requests_made)
        hostvars = data["_meta"]["hostvars"]
        check(sorted(hostvars) == sorted(FLEET), "inventory: hosts %s, not %s" % (sorted(hostvars), FLEET))
        states = {name: hostvars[name]["hzel_state"] for name in FLEET}
        check(states == {"web-1": "running", "web-2": "running", "db-1": "stopped"}, "inventory: states %s" % states)
        check(
            all(
                isinstance(value, (str, int, float, bool, type(None))) or isinstance(value, (list, dict))
                for host in hostvars.values()
                for value in host.values()
            ),
            "inventory: unexpected values",
        )
        self.exported = data
        # with include_metrics: one request more per host (state: [running] leaves web-1 and web-2)
        self.control("DELETE", "stats")
        metrics = self.sync(self.project / "inventories", "metrics.hzel.yml")
        requests_made = self.control("GET", "stats")["by_request"]
        per_host = {
            "GET /api/v1/containers/%s/metrics" % self.containers()[name]["id"]: 1 for name in ("web-1", "web-2")
        }
        check(
            requests_made == dict(per_host, **{"GET /api/v1/containers": 1}),
            "inventory: the sync with metrics made %s" % requests_made,
        )
        check(
            all("hzel_cpu_percent" in hvars for hvars in metrics["_meta"]["hostvars"].values()),
            "inventory: no metrics in %s" % metrics["_meta"]["hostvars"],
        )
        # a constructed inventory over the stored one (AWX: its input inventories as scripts, enabled hosts only)
        folder = self.work / "constructed"
        folder.mkdir()
        self.write_script(folder / "hosts_1", self.enabled_inventory())
        shutil.copyfile(self.project / "constructed.yml", folder / "constructed.yml")
        constructed = self.sync(folder, "hosts_1", "constructed.yml")
        groups = {name: sorted(constructed.get(name, {}).get("hosts", [])) for name in ("web", "cores_1", "large")}
        check(
            groups == {"web": ["web-1", "web-2"], "cores_1": ["web-1", "web-2"], "large": []},
            "inventory: the constructed groups are %s" % groups,
            json.dumps(constructed),
        )
        print(
            "PASS inventory update in the EE (ansible-inventory --list --export): %d hosts, every state, "
            "plain values, db-1 stopped with hzel_state=stopped; 1 API request, 1 + 1 per host with metrics; "
            "a constructed inventory over it groups web-1, web-2" % len(hostvars)
        )

    def sync(self, folder, *sources):
        """ansible-inventory --list --export in the EE, as AWX runs an inventory update; returns its JSON."""
        # AWX sets ANSIBLE_INVENTORY_UNPARSED_FAILED; the check also fails when any one source does not parse
        env = dict(
            self.credential_env(),
            ANSIBLE_INVENTORY_UNPARSED_FAILED="true",
            ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="true",
        )
        command = ["podman", "run", "--rm", "--network", "host", "-v", "%s:/runner/inventory:ro" % folder]
        for name in env:
            command += ["-e", name]  # the value from this process's environment: never on a command line
        command += [self.o.ee, "ansible-inventory"]
        for source in sources:
            command += ["-i", "/runner/inventory/" + source]
        result = run(command + ["--list", "--export"], env=dict(os.environ, **env))
        check(result.returncode == 0, "inventory: ansible-inventory failed in the EE", result.stdout + result.stderr)
        check("__ansible_unsafe" not in result.stdout, "inventory: the export holds __ansible_unsafe", result.stdout)
        return json.loads(result.stdout)

    @staticmethod
    def write_script(path, data):
        """An inventory as AWX writes one for a job: a Python script that prints the stored JSON."""
        path.write_text("#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(data))
        path.chmod(0o755)

    def enabled_inventory(self):
        """What AWX gives a job from the stored inventory: the enabled hosts only (enabled_value: running)."""
        data = json.loads(json.dumps(self.exported))
        disabled = [name for name, hvars in data["_meta"]["hostvars"].items() if hvars.get("hzel_state") != "running"]
        for name in disabled:
            del data["_meta"]["hostvars"][name]
        for group in data.values():
            if isinstance(group, dict) and "hosts" in group:
                group["hosts"] = [host for host in group["hosts"] if host not in disabled]
        return data

    def configure(self):
        env = dict(
            self.credential_env(),
            ANSIBLE_REMOTE_PORT=str(self.o.ssh_port),
            # relative to the project folder, where the job runs: the known_hosts file travels with the project
            ANSIBLE_SSH_COMMON_ARGS="-o UserKnownHostsFile=known_hosts",
        )
        files = {
            "configure.yml": self.root / "examples" / "configure.yml",
            "templates/profile.j2": self.root / "examples" / "templates" / "profile.j2",
            "known_hosts": Path(self.o.known_hosts),
        }
        inventory = self.enabled_inventory()
        status, events, stdout = self.job(
            "configure", "configure.yml", files, env, inventory=inventory, ssh_key=self.o.ssh_key
        )
        check(status == "successful", "configure: job status %s" % status, stdout)
        stats = self.stats(events)
        check(sorted(stats.get("ok", {})) == ["web-1", "web-2"], "configure: hosts %s" % stats.get("ok"), stdout)
        check(not stats.get("failures") and not stats.get("dark"), "configure: failures %s" % stats, stdout)
        check(
            all(stats.get("changed", {}).get(host) == 1 for host in ("web-1", "web-2")),
            "configure: changed %s" % stats.get("changed"),
            stdout,
        )
        print(
            "PASS configure over SSH from inside the EE (gateway port %s, key through ssh-agent): web-1, web-2 "
            "changed; db-1 (disabled) not in the job" % self.o.ssh_port
        )

    def navigator(self):
        folder = self.work / "navigator"
        folder.mkdir()
        shutil.copyfile(self.project / "report.yml", folder / "report.yml")
        env = self.credential_env()
        # ansible-navigator needs /dev/mqueue: in a mount namespace of its own when the machine has none
        command = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            str(self.root / "tools" / "ee_mqueue.sh"),
            str(folder / "dev"),
            str(Path(self.o.navigator) / "bin" / "ansible-navigator"),
            "run",
            "report.yml",
            "--ee",
            "true",
            "--eei",
            self.o.ee,
            "--pp",
            "never",
            "--ce",
            "podman",
            "-m",
            "stdout",
            "--pae",
            "false",
            "--lf",
            str(folder / "navigator.log"),
            "--co=--network=host",
        ]
        for name in env:
            command += ["--penv", name]
        # ansible-navigator passes every ANSIBLE_* variable into the EE: none of the suite's (its collection path)
        clean = {name: value for name, value in os.environ.items() if not name.startswith("ANSIBLE_")}
        result = run(command, cwd=folder, env=dict(clean, **env))
        output = result.stdout + result.stderr
        check(result.returncode == 0, "navigator: ansible-navigator run failed", output)
        check(all(name in output for name in FLEET), "navigator: the report lacks a container", output)
        print(
            "PASS ansible-navigator run --ee true: hzel.cloud.metrics_report inside the EE lists %d containers"
            % len(FLEET)
        )

    def rulebook(self):
        folder = self.work / "rulebook"
        folder.mkdir()
        (folder / "vars.yml").write_text("hzel_events_interval: 1\n")
        (folder / "inventory.yml").write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
        env = self.credential_env()
        command = ["podman", "run", "--rm", "--network", "host", "-v", "%s:/rulebook:ro" % folder]
        for name in env:
            command += ["-e", name]
        command += [
            self.o.de,
            "ansible-rulebook",
            "-r",
            "hzel.cloud.notify_failed",
            "-i",
            "/rulebook/inventory.yml",
            "--vars",
            "/rulebook/vars.yml",
        ]
        lines = []
        rulebook = subprocess.Popen(
            command, env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        reader = threading.Thread(target=lambda: lines.extend(rulebook.stdout), daemon=True)
        reader.start()
        try:
            marker = "hzel container fail-1 "
            # once the rulebook polls the API, a container that ends failed
            self.control("DELETE", "stats")
            self.wait(
                lambda: self.control("GET", "stats")["by_request"].get("GET /api/v1/containers", 0) > 0,
                "rulebook: the event source never polled the API",
                lines,
            )
            self.api("POST", "/containers", {"hostname": "fail-1"})
            self.wait(lambda: any(marker in line for line in lines), "rulebook: no failed event for fail-1", lines)
            polls = self.control("GET", "stats")["by_request"].get("GET /api/v1/containers", 0)
            self.wait(
                lambda: self.control("GET", "stats")["by_request"].get("GET /api/v1/containers", 0) >= polls + 3,
                "rulebook: the event source stopped polling",
                lines,
            )
            seen = [line for line in lines if marker in line and "is failed" in line]
            check(len(seen) == 1, "rulebook: %d failed events for fail-1" % len(seen), "".join(lines))
        finally:
            rulebook.terminate()
            try:
                rulebook.wait(30)
            except subprocess.TimeoutExpired:
                rulebook.kill()
        print("PASS ansible-rulebook in the decision environment: hzel.cloud.notify_failed saw fail-1 fail, once")

    def control(self, method, path):
        reply = requests.request(method, self.o.emulator + "/_emulator/" + path, timeout=30)
        reply.raise_for_status()
        return reply.json() if reply.content else None

    @staticmethod
    def wait(condition, message, lines):
        deadline = time.monotonic() + GUARD
        while not condition():
            check(time.monotonic() < deadline, message, "".join(lines))
            time.sleep(0.2)


def run_steps(stage, steps, failures):
    """Runs the steps in order, each followed by its duration (for information: no check is about time)."""
    try:
        for step in steps:
            started = time.monotonic()
            step()
            print("  (%s: %.0fs)" % (step.__name__, time.monotonic() - started), flush=True)
    except Failure as failure:
        failures.append(failure)
    except Exception as error:  # noqa: BLE001 - a crash in a thread must fail the stage too
        failures.append(Failure("%s: %r" % (getattr(step, "__name__", "step"), error)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("root", "ee", "de", "emulator", "ssh-port", "ssh-key", "known-hosts", "navigator", "work"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--de-emulator", help="an emulator of its own for the decision environment, checked meanwhile")
    parser.add_argument("steps", nargs="*", help="only these (provision inventory configure navigator rulebook)")
    options = parser.parse_args()
    options.emulator = options.emulator.rstrip("/")
    stage = Stage(options)

    def chosen(steps):
        return [step for step in steps if not options.steps or step.__name__ in options.steps]

    ee_steps = chosen([stage.provision, stage.inventory, stage.configure, stage.navigator])
    failures = []
    if options.de_emulator:
        de_options = argparse.Namespace(**vars(options))
        de_options.emulator = options.de_emulator.rstrip("/")
        de_options.work = options.work.rstrip("/") + "-de"
        de_stage = Stage(de_options)
        de_thread = threading.Thread(target=run_steps, args=(de_stage, chosen([de_stage.rulebook]), failures))
        de_thread.start()
        run_steps(stage, ee_steps, failures)
        de_thread.join()
    else:
        run_steps(stage, ee_steps + chosen([stage.rulebook]), failures)
    for failure in failures:
        print("FAIL %s" % failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
