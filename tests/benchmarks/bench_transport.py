#!/usr/bin/env python
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the transport against a plain requests session; prints figures, asserts nothing.

Every server is local (127.0.0.1), a threaded HTTP server in a process of its own, so that the
CPU time of this process is the client's alone.

(a) CPU per request: transport.request against a plain requests session doing the same GETs and JSON
    decoding, sequentially and through a 64-thread pool (goal at most 1.1x).
(b) 1,000 metrics reads through the pool of the module (8), each answered after 22 ms, where 20% of the
    answers are 429 with Retry-After: 1 at random (decided per request and attempt from a fixed seed,
    so the per-request floor is known: each read's own answers and waits, spread over the pool):
    seconds against that floor (goal at most 1.3x, the worst of five runs with seeds 1 to 5); then
    against a real limit of 100 requests/s: seconds against the floor of 10 s (goal at most 1.2x, the
    worst of five) and the number of 429s received.
(c) 200 requests whose reply trickles past api_timeout, through a 64-thread pool: threads and open
    sockets of this process afterwards, and the seconds against the bound (api_timeout per request).
(d) A fleet of 1,000 creates (ContainersAPI.create) against a raw-client peer (a plain requests session
    sending the same POSTs) through the same pool of 8 (goal at most 1.2x).
(e) A 60 MB list reply sent without Content-Length: the peak memory of refusing it (tracemalloc).
(f) api_rate_limit with demand above it: the fleet module's pool (8 workers, run_pool), then the inventory's
    metrics fan-out (fetch_metrics, 32 workers), send metrics reads answered after 22 ms (about 360 and 1,450 a
    second without a limit) through a client with api_rate_limit 40 for 25 s each; then the event source
    (hzel_events.main, as ansible-rulebook runs it) watching 300 running containers with a threshold, interval 1
    s (about 300 requests a second without a limit), for 25 s. The server counts the arrivals: the most in any
    10 s window against 10 x limit + burst (goal: at most), and the share of the limit used (goal at least 90%).
(g) The API's budget headers: 1,000 metrics reads through the pool of 8 against a server that admits 250
    requests per window of 2.5 s (100/s), counted from the first request, and states its budget in
    RateLimit-* headers (Reset in whole seconds, rounded up) or X-RateLimit-* headers (Reset a UNIX time,
    rounded up): the 429s received (goal: none) and the seconds against the floor the windows allow.

The collection must be on ANSIBLE_COLLECTIONS_PATH (tools/bench.sh puts it there). Run alone: every
phase stops by itself within a few minutes. Usage: bench_transport.py [cpu] [429] [trickle] [creates]
[memory] [limit] [budget] (every phase by default).
"""

import http.server
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

TOKEN = "bench-token"
ID = "01942cf7-0000-7000-8000-%012d"
RECORD = {
    "id": ID % 1,
    "user_id": "01942cf6-0000-7000-8000-000000000001",
    "hostname": "web-1",
    "state": "provisioning",
    "cpu_cores": 1,
    "memory_mb": 512,
    "disk_gb": 18,
    "created_at": "2026-03-28T00:00:00Z",
}
METRICS = {"cpu_percent": 12.4, "memory_used_mb": 203, "memory_total_mb": 512, "disk_used_gb": 4.1, "disk_total_gb": 18}
RANDOM_429 = 0.2
LATENCY = 0.022
RUNS = 5
CLIENT_LIMIT = 40.0
BUDGET_WINDOW = 2.5
BUDGET_PER_WINDOW = 250
CLIENT_LIMIT_SECONDS = 25.0
SOURCE_CONTAINERS = 300
LIMIT_PER_SECOND = 100
METRICS_READS = 1000
CPU_SEQUENTIAL = 2000
CPU_POOLED = 4000
POOL = 64
MODULE_POOL = 8
TRICKLED = 200
TRICKLE_TIMEOUT = 0.25
CREATES = 1000
HUGE_MB = 60


def random_429(container, attempt, seed):
    """Whether the server answers this attempt at this container with a random 429 (the client can tell too)."""
    return random.Random("%s:%s:%d" % (seed, container, attempt)).random() < RANDOM_429


# The server ---------------------------------------------------------------------------------------


class _State:
    lock = threading.Lock()
    arrivals = []
    window_started = None
    window_used = 0
    attempts = {}
    admitted = deque()
    limited = 0
    created = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: without this, Nagle and delayed ACKs add 40 ms to some replies.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _answer(self, status, payload, headers=()):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        scenario, _slash, path = self.path[1:].partition("/")
        if scenario == "stats":
            with _State.lock:
                self._answer(200, {"limited": _State.limited, "created": _State.created, "arrivals": _State.arrivals})
                _State.limited = 0
                _State.arrivals = []
                _State.window_started = None
                _State.attempts.clear()
                _State.admitted.clear()
            return
        if scenario == "trickle":
            body = b'{"data": []}' + b" " * 200
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for index in range(len(body)):
                try:
                    self.wfile.write(body[index : index + 1])
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.02)
            return
        if scenario == "huge":
            # A list reply of 60 MB without Content-Length (chunked), so that only counting can refuse it.
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            item = json.dumps(dict(RECORD, hostname="x" * 40)).encode() + b","
            block = b'{"data": [' + item * (1024 * 1024 // len(item))
            try:
                for _megabyte in range(HUGE_MB):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                    block = item * (1024 * 1024 // len(item))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            self.close_connection = True
            return
        container = path.split("/")[3] if path.count("/") >= 4 else ""
        if scenario == "counted" and path == "api/v1/containers":
            # The event source's list: running containers, each watched for its metrics.
            with _State.lock:
                _State.arrivals.append(time.monotonic())
            time.sleep(LATENCY)
            records = [
                dict(RECORD, id=ID % number, hostname="node-%d" % number, state="running")
                for number in range(1, SOURCE_CONTAINERS + 1)
            ]
            self._answer(200, {"data": records})
            return
        if scenario.startswith("budget"):
            now = time.monotonic()
            with _State.lock:
                if _State.window_started is None or now >= _State.window_started + BUDGET_WINDOW:
                    _State.window_started, _State.window_used = now, 0
                limited = _State.window_used >= BUDGET_PER_WINDOW
                _State.window_used += not limited
                _State.limited += limited
                remaining = BUDGET_PER_WINDOW - _State.window_used
                reset = _State.window_started + BUDGET_WINDOW - now
            if scenario == "budget-x":
                names = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
                reset_text = "%d" % math.ceil(time.time() + reset)
            else:
                names = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
                reset_text = "%d" % math.ceil(reset)
            headers = list(zip(names, (str(BUDGET_PER_WINDOW), str(remaining), reset_text)))
            time.sleep(LATENCY)
            if limited:
                self._answer(
                    429,
                    {"error": {"code": "RATE_LIMITED", "message": "Too many requests"}},
                    headers + [("Retry-After", reset_text if scenario != "budget-x" else str(math.ceil(reset)))],
                )
            else:
                self._answer(200, {"data": METRICS}, headers)
            return
        if scenario == "counted":
            with _State.lock:
                _State.arrivals.append(time.monotonic())
        if scenario.startswith(("random429", "limit", "counted")):
            time.sleep(LATENCY)
        if scenario.startswith("random429"):
            with _State.lock:
                attempt = _State.attempts.get(container, 0)
                _State.attempts[container] = attempt + 1
                limited = random_429(container, attempt, scenario[len("random429-") :])
                _State.limited += limited
            if limited:
                self._answer(
                    429, {"error": {"code": "RATE_LIMITED", "message": "Too many requests"}}, [("Retry-After", "1")]
                )
                return
        if scenario == "limit":
            now = time.monotonic()
            with _State.lock:
                while _State.admitted and _State.admitted[0] <= now - 1.0:
                    _State.admitted.popleft()
                limited = len(_State.admitted) >= LIMIT_PER_SECOND
                if limited:
                    _State.limited += 1
                else:
                    _State.admitted.append(now)
            if limited:
                self._answer(
                    429, {"error": {"code": "RATE_LIMITED", "message": "Too many requests"}}, [("Retry-After", "1")]
                )
                return
        self._answer(200, {"data": METRICS})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        spec = json.loads(self.rfile.read(length) or b"{}")
        with _State.lock:
            _State.created += 1
        self._answer(200, {"data": dict(RECORD, hostname=spec.get("hostname", "web-1"))})


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def serve():
    server = _Server(("127.0.0.1", 0), _Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


# The client ---------------------------------------------------------------------------------------


def cpu_and_seconds(work, *args):
    cpu, wall = time.process_time(), time.monotonic()
    work(*args)
    return time.process_time() - cpu, time.monotonic() - wall


def one_by_one(function, items):
    return [function(item) for item in items]


def in_pool(function, items, workers):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def plain_session(pool):
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=pool))
    session.headers.update({"Authorization": "Bearer " + TOKEN, "Accept": "application/json"})
    return session


def requesters(base, path, workers, transport_for):
    """The same GET through a plain requests session and through the transport."""
    session = plain_session(max(workers, 10))
    url = base + "/plain/api/v1" + path
    transport = transport_for(base + "/plain", workers)

    def plain(_number):
        response = session.get(url, timeout=30)
        return response.json()["data"]

    def ours(_number):
        return transport.request("GET", path)

    return plain, ours


def bench_cpu(base, transport_for):
    path = "/containers/%s/metrics" % (ID % 1)
    rows = []
    for label, count, workers in (("sequential", CPU_SEQUENTIAL, 1), ("64-thread pool", CPU_POOLED, POOL)):
        plain, ours = requesters(base, path, workers, transport_for)
        plain(0), ours(0)
        figures = {}
        for name, function in (
            ("plain", plain),
            ("transport", ours),
            ("plain again", plain),
            ("transport again", ours),
        ):
            if workers == 1:
                cpu = cpu_and_seconds(one_by_one, function, range(count))[0]
            else:
                cpu = cpu_and_seconds(in_pool, function, range(count), workers)[0]
            figures.setdefault(name.split()[0], []).append(cpu / count)
        plain_cpu, our_cpu = min(figures["plain"]), min(figures["transport"])
        rows.append(
            "  %-15s plain %.0f us, transport %.0f us per request: %.2fx (goal <= 1.1x)"
            % (label, plain_cpu * 1e6, our_cpu * 1e6, our_cpu / plain_cpu)
        )
    print("(a) CPU per request, %d sequential / %d pooled GETs (best of two rounds)" % (CPU_SEQUENTIAL, CPU_POOLED))
    print("\n".join(rows))


def stats(base):
    import urllib.request

    with urllib.request.urlopen(base + "/stats/") as reply:
        return json.loads(reply.read())


def bench_429(base, client_for):
    stats(base)
    ids = [ID % number for number in range(1, METRICS_READS + 1)]
    print(
        "(b) %d metrics reads through a pool of %d, each answered after %d ms, worst of %d runs"
        % (METRICS_READS, MODULE_POOL, LATENCY * 1000, RUNS)
    )
    rows = []
    for seed in range(1, RUNS + 1):
        spent = []
        for container in ids:
            attempt = 0
            while random_429(container, attempt, seed):
                attempt += 1
            spent.append(attempt * 1.0 + (attempt + 1) * LATENCY)
        floor = max(sum(spent) / MODULE_POOL, *spent)
        client = client_for(base + "/random429-%d" % seed, MODULE_POOL)
        seconds = cpu_and_seconds(in_pool, client.metrics, ids, MODULE_POOL)[1]
        rows.append((seconds / floor, seconds, floor, stats(base)["limited"], client.transport.rate.holds))
    print(
        "  20%% random 429 (Retry-After: 1): worst %.2fx the per-request floor (goal <= 1.3x); runs: %s"
        % (
            max(rows)[0],
            "; ".join("%.1f s / %.1f s = %.2fx, %d 429s, %d holds" % (row[1:3] + row[:1] + row[3:]) for row in rows),
        )
    )
    rows = []
    floor = METRICS_READS / LIMIT_PER_SECOND
    for _run in range(RUNS):
        client = client_for(base + "/limit", MODULE_POOL)
        seconds = cpu_and_seconds(in_pool, client.metrics, ids, MODULE_POOL)[1]
        rows.append((seconds / floor, seconds, stats(base)["limited"], client.transport.rate.holds))
        # The server's window empties before the next run.
        time.sleep(1.0)
    print(
        "  a real limit of %d/s: worst %.2fx its floor of %.0f s (goal <= 1.2x); runs: %s"
        % (
            LIMIT_PER_SECOND,
            max(rows)[0],
            floor,
            "; ".join("%.1f s = %.2fx, %d 429s, %d holds" % (row[1], row[0], row[2], row[3]) for row in rows),
        )
    )


def most_in_window(times, seconds):
    times = sorted(times)
    most = first = 0
    for last, at in enumerate(times):
        while times[first] <= at - seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


def bench_client_limit(base, client_for):
    from ansible_collections.hzel.cloud.plugins.module_utils._executor import fetch_metrics, run_pool
    from ansible_collections.hzel.cloud.plugins.module_utils._rate import burst_for

    burst = burst_for(CLIENT_LIMIT)
    ids = [ID % number for number in range(1, 100000)][: int(CLIENT_LIMIT * CLIENT_LIMIT_SECONDS * 2)]
    for label, pool in (("the fleet module's pool (run_pool)", MODULE_POOL), ("the inventory's metrics fan-out", 32)):
        stats(base)
        client = client_for(base + "/counted", pool, rate_limit=CLIENT_LIMIT)
        end = time.monotonic() + CLIENT_LIMIT_SECONDS
        started = time.monotonic()
        if pool == MODULE_POOL:

            def read(container, client=client, end=end):
                if time.monotonic() < end:
                    client.metrics(container)

            run_pool(read, ids, pool)
        else:
            # As the inventory plugin reads them (fetch_metrics), for as many hosts as the time allows.
            records = [{"id": container, "hostname": "node-%d" % number} for number, container in enumerate(ids)]
            done = 0
            while time.monotonic() < end:
                fetch_metrics(client, records[done : done + pool * 4], pool)
                done += pool * 4
        seconds = time.monotonic() - started
        print(
            "(f) api_rate_limit %s through %s (%d workers), demand about %d/s, %.0f s"
            % (plain(CLIENT_LIMIT), label, pool, pool / LATENCY, seconds)
        )
        print_limit_figures(stats(base)["arrivals"], seconds, burst)
    stats(base)
    seconds = source_under_limit(base)
    print(
        "(f) api_rate_limit %s through the event source (hzel_events), %d running containers with a threshold, "
        "interval 1 s, demand about %d/s, %.0f s" % (plain(CLIENT_LIMIT), SOURCE_CONTAINERS, SOURCE_CONTAINERS, seconds)
    )
    print_limit_figures(stats(base)["arrivals"], seconds, burst)


def print_limit_figures(arrivals, seconds, burst):
    print(
        "  most requests in any 10 s window %d (goal <= 10 x limit + burst = %d); %d requests in %.1f s: %.1f%% "
        "of the limit used (goal >= 90%%)"
        % (
            most_in_window(arrivals, 10.0),
            10 * CLIENT_LIMIT + burst,
            len(arrivals),
            seconds,
            100.0 * len(arrivals) / (CLIENT_LIMIT * seconds),
        )
    )


def source_under_limit(base):
    """The event source as ansible-rulebook runs it (main() on an event loop), stopped after CLIENT_LIMIT_SECONDS."""
    import asyncio

    from ansible_collections.hzel.cloud.extensions.eda.plugins.event_source import hzel_events

    class Queue:
        async def put(self, event):
            pass

    args = {
        "api_url": base + "/counted",
        "api_token": TOKEN,
        "interval": 1,
        "thresholds": {"cpu_percent": 99},
        "api_rate_limit": CLIENT_LIMIT,
    }

    async def run():
        try:
            await asyncio.wait_for(hzel_events.main(Queue(), args), CLIENT_LIMIT_SECONDS)
        except asyncio.TimeoutError:
            pass

    started = time.monotonic()
    asyncio.run(run())
    return time.monotonic() - started


def bench_budget(base, client_for):
    ids = [ID % number for number in range(1, METRICS_READS + 1)]
    windows = -(-METRICS_READS // BUDGET_PER_WINDOW)
    floor = (windows - 1) * BUDGET_WINDOW + (METRICS_READS - (windows - 1) * BUDGET_PER_WINDOW) * LATENCY / MODULE_POOL
    print(
        "(g) %d metrics reads through a pool of %d against %d requests per %.1f s window stated in budget headers"
        % (METRICS_READS, MODULE_POOL, BUDGET_PER_WINDOW, BUDGET_WINDOW)
    )
    for scenario, label in (("budget", "RateLimit-*, Reset in seconds"), ("budget-x", "X-RateLimit-*, UNIX time")):
        stats(base)
        client = client_for(base + "/" + scenario, MODULE_POOL)
        seconds = cpu_and_seconds(in_pool, client.metrics, ids, MODULE_POOL)[1]
        print(
            "  %-30s %d 429s (goal: none), %.1f s against the %.1f s the windows allow: %.2fx; %d waits for a reset"
            % (label, stats(base)["limited"], seconds, floor, seconds / floor, client.transport.gate.budget_waits)
        )


def plain(value):
    return str(int(value)) if float(value).is_integer() else str(value)


def open_sockets():
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink("/proc/self/fd/" + fd).startswith("socket:")
        except OSError:
            pass
    return count


def bench_trickle(base, client_for):
    from ansible_collections.hzel.cloud.plugins.module_utils._transport import HzelUnavailable

    client = client_for(base + "/trickle", POOL, timeout=TRICKLE_TIMEOUT, retries=0)
    threads, sockets = threading.active_count(), open_sockets()
    durations = []

    def read(_number):
        started = time.monotonic()
        try:
            client.list()
        except HzelUnavailable:
            pass
        durations.append(time.monotonic() - started)

    seconds = cpu_and_seconds(in_pool, read, range(TRICKLED), POOL)[1]
    bound = -(-TRICKLED // POOL) * TRICKLE_TIMEOUT
    print("(c) %d requests trickling past api_timeout=%ss through %d threads" % (TRICKLED, TRICKLE_TIMEOUT, POOL))
    print(
        "  afterwards: %d threads (%d before), %d open sockets (%d before); %.2f s against a bound of %.2f s "
        "(%d rounds of api_timeout), longest request %.3f s"
        % (
            threading.active_count(),
            threads,
            open_sockets(),
            sockets,
            seconds,
            bound,
            -(-TRICKLED // POOL),
            max(durations),
        )
    )


def bench_creates(base, client_for):
    from ansible_collections.hzel.cloud.plugins.module_utils._executor import run_pool

    specs = [
        {"hostname": "web-%d" % number, "cpu_cores": 1, "memory_mb": 512, "disk_gb": 18} for number in range(CREATES)
    ]
    session = plain_session(max(MODULE_POOL, 10))
    url = base + "/plain/api/v1/containers"

    def raw(spec):
        response = session.post(url, json=spec, timeout=30)
        response.raise_for_status()
        return response.json()["data"]

    client = client_for(base + "/plain", MODULE_POOL)
    results = {}
    for name, work in (("raw", raw), ("ours", client.create), ("raw", raw), ("ours", client.create)):
        seconds = cpu_and_seconds(run_pool, work, specs, MODULE_POOL)[1]
        results.setdefault(name, []).append(seconds)
    raw_seconds, our_seconds = min(results["raw"]), min(results["ours"])
    print("(d) a fleet of %d creates through a pool of %d (best of two rounds)" % (CREATES, MODULE_POOL))
    print(
        "  ContainersAPI.create %.2f s, raw requests session %.2f s: %.2fx (goal <= 1.2x)"
        % (our_seconds, raw_seconds, our_seconds / raw_seconds)
    )


def bench_memory(base, client_for):
    import tracemalloc

    from ansible_collections.hzel.cloud.plugins.module_utils._transport import HzelError

    client = client_for(base + "/huge", 1)
    tracemalloc.start()
    try:
        client.list()
        outcome = "accepted"
    except HzelError as failure:
        outcome = failure.message
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print("(e) a %d MB list reply without Content-Length" % HUGE_MB)
    print("  peak memory %.1f MiB (cap of the list 16 MiB): %s" % (peak / 1024 / 1024, outcome[:110]))


def main():
    if sys.argv[1:] == ["--serve"]:
        serve()
        return
    for path in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
        if path:
            sys.path.insert(0, path)
    from ansible_collections.hzel.cloud.plugins.module_utils._containers import ContainersAPI
    from ansible_collections.hzel.cloud.plugins.module_utils._transport import HzelTransport

    def transport_for(api_url, pool, **options):
        return HzelTransport(api_url, TOKEN, pool_size=pool, **options)

    def client_for(api_url, pool, **options):
        return ContainersAPI(transport_for(api_url, pool, **options))

    server = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"], stdout=subprocess.PIPE)
    try:
        base = "http://127.0.0.1:%d" % int(server.stdout.readline())
        print("transport benchmark (%d CPUs, Python %s)" % (os.cpu_count(), sys.version.split()[0]))
        phases = {
            "cpu": lambda: bench_cpu(base, transport_for),
            "429": lambda: bench_429(base, client_for),
            "trickle": lambda: bench_trickle(base, client_for),
            "creates": lambda: bench_creates(base, client_for),
            "memory": lambda: bench_memory(base, client_for),
            "limit": lambda: bench_client_limit(base, client_for),
            "budget": lambda: bench_budget(base, client_for),
        }
        for name in sys.argv[1:] or list(phases):
            phases[name]()
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
