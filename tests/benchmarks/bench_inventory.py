#!/usr/bin/env python
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the hzel inventory plugin with 10,000 containers; prints figures, asserts nothing.

(a) `ansible-inventory --list` through the plugin (HTTP to the emulator included) against a script
    inventory that prints the same hosts, group and host variables precomputed: the floor that Ansible
    itself sets. Both are run in turns in one run; the ratio of the medians is the figure (goal at most
    1.15). Needs EMULATOR_URL (tools/bench.sh starts an emulator).
(b) `ansible-inventory --list` with include_metrics, each metrics request answered after 20 ms, against
    the same inventory without metrics, at metrics_workers 32, 64, 128 and 256 (goal at most 2x at the
    default, 128; printed beside the ratio that the latency floor alone allows), metrics_processes left to
    the plugin (BENCH_METRICS_PROCESSES sets it). The API is a small asyncio
    server on 127.0.0.1 in a process of its own, which holds no
    worker while it waits: its CPU seconds are printed beside the client's, to show it is not the limit.
    Every configuration is run in turns, ROUNDS_METRICS times; the figures are medians.

(c) The client's CPU time per metrics read, in this process: fetch_metrics (the plugin's pool) of 10,000
    reads from the same server, at each of the metrics_workers above; the median of ROUNDS_METRICS.

Usage: bench_inventory.py [floor] [metrics] [cpu] (all by default); BENCH_METRICS_WORKERS ("32", "16 32")
and BENCH_ROUNDS narrow (b) and (c). Needs the collection on
ANSIBLE_COLLECTIONS_PATH.
"""

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

from bench_common import call

TOKEN = "hzel-demo-token"
HOSTS = 10000
ROUNDS = 5
FIELDS = ("id", "user_id", "hostname", "state", "cpu_cores", "memory_mb", "disk_gb", "created_at")
METRICS_LATENCY = 0.020
# BENCH_METRICS_WORKERS="32" (space-separated) and BENCH_ROUNDS narrow a run to what is being measured.
METRICS_WORKERS = tuple(int(w) for w in os.environ.get("BENCH_METRICS_WORKERS", "32 64 128 256").split())
ROUNDS_METRICS = int(os.environ.get("BENCH_ROUNDS", "3"))
# BENCH_METRICS_PROCESSES sets metrics_processes (left to the machine by default).
METRICS_PROCESSES = os.environ.get("BENCH_METRICS_PROCESSES", "")
METRICS = {"cpu_percent": 12.4, "memory_used_mb": 203, "memory_total_mb": 512, "disk_used_gb": 4.1, "disk_total_gb": 18}


def child_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command, env, with_cpu=False):
    started, cpu = time.perf_counter(), child_cpu()
    completed = subprocess.run(command, env=env, capture_output=True, check=False)
    elapsed, cpu = time.perf_counter() - started, child_cpu() - cpu
    # A warning in the metrics runs is a metrics fetch that failed: its figure would mean nothing.
    if completed.returncode != 0 or (with_cpu and b"[WARNING]" in completed.stderr):
        sys.stderr.write(completed.stderr.decode())
        raise SystemExit("%s failed or warned" % " ".join(command))
    if with_cpu:
        return elapsed, cpu, json.loads(completed.stdout)
    return elapsed, json.loads(completed.stdout)


def floor():
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


# (b) The API for the metrics figures -------------------------------------------------------------


def fleet(count):
    """Records of the reference's shape, ids as UUIDs: what the list endpoint answers."""
    owner = str(uuid.UUID(int=1))
    return [
        {
            "id": str(uuid.UUID(int=(7 << 76) | (8 << 60) | index)),
            "user_id": owner,
            "hostname": "node-%05d" % index,
            "state": "running",
            "cpu_cores": 1 + index % 4,
            "memory_mb": 512 * (1 + index % 4),
            "disk_gb": 18,
            "created_at": "2026-03-28T00:00:00Z",
        }
        for index in range(count)
    ]


def reply(status, payload):
    body = json.dumps(payload).encode()
    head = "HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (status, len(body))
    return head.encode() + body


async def serve_api(count, latency):
    """The list (at once) and the metrics (after ``latency``, sleeping on the event loop) over keep-alive HTTP/1.1."""
    listing = reply(200, {"data": fleet(count)})
    metrics = reply(200, {"data": METRICS})
    missing = reply(404, {"error": {"code": "NOT_FOUND", "message": "no such endpoint"}})
    served = {"metrics": 0, "list": 0}

    async def connection(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                if path.endswith(b"/metrics"):
                    await asyncio.sleep(latency)
                    served["metrics"] += 1
                    writer.write(metrics)
                elif path == b"/api/v1/containers":
                    served["list"] += 1
                    writer.write(listing)
                elif path == b"/stats":
                    writer.write(reply(200, dict(served, cpu=time.process_time())))
                else:
                    writer.write(missing)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0, backlog=512)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def server_stats(url):
    with urllib.request.urlopen(url + "/stats") as response:
        return json.load(response)


def metrics():
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(HOSTS), str(METRICS_LATENCY)], stdout=subprocess.PIPE
    )
    try:
        url = "http://127.0.0.1:%d" % int(server.stdout.readline())
        env = dict(os.environ, HZEL_API_TOKEN=TOKEN, ANSIBLE_INVENTORY_UNPARSED_FAILED="true")
        with tempfile.TemporaryDirectory() as work:
            sources = {}
            for workers in (None,) + METRICS_WORKERS:
                name = "plain" if workers is None else "metrics %d" % workers
                sources[name] = os.path.join(work, "%s.hzel.yml" % name.replace(" ", "-"))
                with open(sources[name], "w", encoding="utf-8") as handle:
                    handle.write("plugin: hzel.cloud.hzel\napi_url: %s\n" % url)
                    if workers is not None:
                        handle.write("include_metrics: true\nmetrics_workers: %d\n" % workers)
                        if METRICS_PROCESSES:
                            handle.write("metrics_processes: %s\n" % METRICS_PROCESSES)
            walls = {name: [] for name in sources}
            cpus = {name: [] for name in sources}
            served_cpu = {name: [] for name in sources}
            for _round in range(ROUNDS_METRICS):
                for name, source in sources.items():
                    before = server_stats(url)
                    seconds, cpu, out = timed(["ansible-inventory", "-i", source, "--list"], env, with_cpu=True)
                    after = server_stats(url)
                    hostvars = out["_meta"]["hostvars"]
                    with_metrics = sum(1 for values in hostvars.values() if "hzel_cpu_percent" in values)
                    if len(hostvars) != HOSTS or with_metrics != (0 if name == "plain" else HOSTS):
                        raise SystemExit("%s: %d hosts, %d with metrics" % (name, len(hostvars), with_metrics))
                    walls[name].append(seconds)
                    cpus[name].append(cpu)
                    served_cpu[name].append(after["cpu"] - before["cpu"])
    finally:
        server.terminate()
        server.wait()
    plain = statistics.median(walls["plain"])
    print(
        "%d hosts, metrics answered after %d ms; ansible-inventory --list, median of %d (wall s / client CPU s / "
        "server CPU s)" % (HOSTS, METRICS_LATENCY * 1000, ROUNDS_METRICS)
    )
    for name in sources:
        wall = statistics.median(walls[name])
        workers = name.split()[-1]
        latency_floor = "" if name == "plain" else ", latency floor %.1f s" % (HOSTS * METRICS_LATENCY / int(workers))
        print(
            "  %-11s %6.2f s (%s) / %5.2f / %4.2f   ratio %.2f%s"
            % (
                name,
                wall,
                ", ".join("%.2f" % t for t in walls[name]),
                statistics.median(cpus[name]),
                statistics.median(served_cpu[name]),
                wall / plain,
                latency_floor,
            )
        )
    print(
        "goal: ratio at most 2.0 at the default metrics_workers (128), metrics_processes %s; the latency alone puts "
        "the ratio at least at %s (plain + latency floor, over plain)"
        % (
            METRICS_PROCESSES or "left to the machine (one per CPU up to 4, or one per 32 workers, at most 8)",
            ", ".join(
                "%.2f at %d" % ((plain + HOSTS * METRICS_LATENCY / workers) / plain, workers)
                for workers in METRICS_WORKERS
            ),
        )
    )


def transport_cpu():
    """(c) The CPU time of one metrics read in this process: fetch_metrics (the plugin's pool) of HOSTS reads."""
    # Imported here: the other phases run ansible-inventory and need no collection on sys.path.
    for path in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
        if path and path not in sys.path:
            sys.path.insert(0, path)
    from ansible_collections.hzel.cloud.plugins.module_utils._containers import ContainersAPI
    from ansible_collections.hzel.cloud.plugins.module_utils._executor import fetch_metrics
    from ansible_collections.hzel.cloud.plugins.module_utils._transport import HzelTransport

    server = subprocess.Popen([sys.executable, __file__, "--serve", "10", str(METRICS_LATENCY)], stdout=subprocess.PIPE)
    try:
        url = "http://127.0.0.1:%d" % int(server.stdout.readline())
        records = fleet(HOSTS)
        print(
            "CPU per metrics read, fetch_metrics of %d hosts answered after %d ms, median of %d (wall s, CPU us):"
            % (HOSTS, METRICS_LATENCY * 1000, ROUNDS_METRICS)
        )
        for workers in METRICS_WORKERS:
            api = ContainersAPI(HzelTransport(url, TOKEN, pool_size=workers))
            fetch_metrics(api, records[:200], workers)
            walls, cpus = [], []
            for _round in range(ROUNDS_METRICS):
                started, cpu = time.perf_counter(), time.process_time()
                _fetched, failures = fetch_metrics(api, records, workers)
                walls.append(time.perf_counter() - started)
                cpus.append((time.process_time() - cpu) / HOSTS * 1e6)
                if failures:
                    raise SystemExit("%d metrics reads failed" % len(failures))
            api.transport.close()
            print(
                "  %2d workers  %5.2f s  %4.0f us per request (%s)"
                % (workers, statistics.median(walls), statistics.median(cpus), ", ".join("%.0f" % c for c in cpus))
            )
    finally:
        server.terminate()
        server.wait()


def main(argv):
    if argv[:1] == ["--serve"]:
        asyncio.run(serve_api(int(argv[1]), float(argv[2])))
        return 0
    parts = argv or ["floor", "metrics", "cpu"]
    if "floor" in parts:
        floor()
    if "metrics" in parts:
        metrics()
    if "cpu" in parts:
        transport_cpu()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
