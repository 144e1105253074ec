#!/usr/bin/env python
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the hzel_events event source; prints figures, asserts nothing.

- requests per poll with 1,000 watched running containers, without and with thresholds (the
  emulator's request count over a few polls);
- memory of the source (resident set and Python heap) after 1,000 polls of 1,000 containers, with a
  container changing every 10 polls, against the same after 100 polls (garbage collected first);
- delay from a change to its event on the queue at interval 1, median and worst over 20 changes made at
  random points of the poll cycle (the source alone; the eda stage of tools/test.sh measures the same
  through ansible-rulebook);
- metrics on a budget: 1,000 running containers with thresholds, interval 5, metrics_interval 60, in
  virtual time (each pause is one interval): requests per second against the goal 1/interval +
  1000/metrics_interval, and the delay from a reading crossing a threshold (set through the emulator's
  scripted load at a random point of the poll cycle, for a container drawn at random, seeded) to its
  event, worst of 10, against the goal metrics_interval + interval.

The source runs in this process, driven through main() with an asyncio queue. Needs EMULATOR_URL
(tools/bench.sh starts an emulator) and the collection under COLLECTIONS_DIR.
"""

import asyncio
import gc
import os
import random
import statistics
import sys
import time
import tracemalloc

from bench_common import call

TOKEN = "hzel-demo-token"
CONTAINERS = 1000
POLLS = 1000
# Memory is compared with its level after this many polls, once the client's bounded buffers are full.
WARM = 100


def resident_mib():
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class Enough(Exception):
    """Ends a run of the source after the polls it was given."""


def run_source(hzel_events, args, polls, between=None):
    """main() for a number of polls without waiting between them; returns how many events it emitted."""
    count = {"polls": 0, "events": 0}

    class Queue:
        async def put(self, event):
            count["events"] += 1

    async def pause(seconds):
        count["polls"] += 1
        if between is not None:
            between(count["polls"])
        if count["polls"] >= polls:
            raise Enough()
        await asyncio.sleep(0)

    hzel_events._pause = pause
    try:
        asyncio.run(hzel_events.main(Queue(), args))
    except Enough:
        pass
    return count["events"]


def main():
    url = os.environ["EMULATOR_URL"]
    sys.path.insert(0, os.environ["COLLECTIONS_DIR"])
    from ansible_collections.hzel.cloud.extensions.eda.plugins.event_source import hzel_events

    original_pause = hzel_events._pause
    args = {"api_url": url, "api_token": TOKEN}
    call(url + "/_emulator/reset", "POST")
    call(url + "/_emulator/seed", "POST", {"owner": "alice", "count": CONTAINERS, "prefix": "node-"})
    containers = call(url + "/api/v1/containers", token=TOKEN)["data"]

    for label, extra in (("without thresholds", {}), ("with thresholds", {"thresholds": {"memory_percent": 99}})):
        call(url + "/_emulator/stats", "DELETE")
        run_source(hzel_events, dict(args, **extra), polls=5)
        total = call(url + "/_emulator/stats")["total"]
        print("requests per poll, %d watched running containers, %s: %.1f" % (len(containers), label, total / 5.0))

    tracemalloc.start()
    marks = {}
    target = containers[0]["id"]

    def between(poll):
        if poll % 10 == 0:
            action = "stop" if poll % 20 == 10 else "start"
            call("%s/api/v1/containers/%s/%s" % (url, target, action), "POST", token=TOKEN)
        if poll in (WARM, POLLS):
            gc.collect()
            marks[poll] = (resident_mib(), tracemalloc.get_traced_memory()[0] / 1048576.0)

    started = time.perf_counter()
    events = run_source(hzel_events, args, polls=POLLS, between=between)
    elapsed = time.perf_counter() - started
    tracemalloc.stop()
    print(
        "source memory after %d polls of %d containers (%d events): resident %.1f MiB (%.1f after %d polls), "
        "Python heap %.2f MiB (%.2f after %d polls); %.1f ms per poll"
        % (
            POLLS,
            len(containers),
            events,
            marks[POLLS][0],
            marks[WARM][0],
            WARM,
            marks[POLLS][1],
            marks[WARM][1],
            WARM,
            elapsed * 1000.0 / POLLS,
        )
    )

    hzel_events._pause = original_pause
    print("delay from a change to its event at interval 1 (the source alone), 20 changes: ", end="", flush=True)
    print(delay_figures(hzel_events, url, args, target))
    budget_figures(hzel_events, url, args, containers)
    hzel_events._pause = original_pause


def budget_figures(hzel_events, url, args, containers, interval=5.0, metrics_interval=60.0, trials=10):
    """Requests per second and threshold-to-event delay with metrics_interval, in virtual time."""
    rng = random.Random(20261204)
    call(url + "/_emulator/metrics", "DELETE")
    for item in containers:
        if item["state"] != "running":
            call("%s/api/v1/containers/%s/start" % (url, item["id"]), "POST", token=TOKEN)
    # A load well under the threshold for every container, then one crossing at a time.
    call(url + "/_emulator/metrics", "POST", {"hostname_pattern": "*", "memory_percent": 40, "jitter": False})
    chosen = rng.sample(containers, trials)
    state = {"poll": 0, "trial": 0, "set_at": None, "delays": [], "requests_from": None}
    polls_needed = int(trials * (metrics_interval / interval + 2)) + 4

    class Queue:
        async def put(self, event):
            hzel = event["hzel"]
            trial = state["trial"]
            if (
                hzel["type"] == "threshold_exceeded"
                and trial < trials
                and hzel["container"]["id"] == chosen[trial]["id"]
                and state["set_at"] is not None
            ):
                state["delays"].append(state["poll"] * interval - state["set_at"])
                state["trial"] += 1
                state["set_at"] = None

    async def pause(seconds):
        state["poll"] += 1
        if state["poll"] == 2:
            call(url + "/_emulator/stats", "DELETE")
            state["requests_from"] = state["poll"]
        if state["set_at"] is None and state["trial"] < trials and state["poll"] >= 2:
            # The crossing happens at a random point before the next poll.
            offset = rng.uniform(0, interval)
            call(
                url + "/_emulator/metrics",
                "POST",
                {"hostname_pattern": chosen[state["trial"]]["hostname"], "memory_percent": 100, "jitter": False},
            )
            state["set_at"] = (state["poll"] - 1) * interval + offset
        if state["poll"] >= polls_needed or state["trial"] >= trials:
            raise Enough()
        await asyncio.sleep(0)

    hzel_events._pause = pause
    settings = dict(
        args,
        interval=interval,
        metrics_interval=metrics_interval,
        thresholds={"memory_percent": 90},
        startup_events="none",
    )
    try:
        asyncio.run(hzel_events.main(Queue(), settings))
    except Enough:
        pass
    requests = call(url + "/_emulator/stats")["total"]
    seconds = (state["poll"] - state["requests_from"]) * interval
    print(
        "metrics on a budget, %d running containers, interval %gs, metrics_interval %gs: %.1f requests per second "
        "(goal at most %.1f); from a reading crossing a threshold to its event, worst of %d: %.1fs (goal at most "
        "%gs)"
        % (
            len(containers),
            interval,
            metrics_interval,
            requests / seconds,
            1 / interval + len(containers) / metrics_interval,
            len(state["delays"]),
            max(state["delays"]) if state["delays"] else float("nan"),
            metrics_interval + interval,
        )
    )
    call(url + "/_emulator/metrics", "DELETE")


def delay_figures(hzel_events, url, args, target):
    async def measure():
        queue = asyncio.Queue()
        task = asyncio.ensure_future(hzel_events.main(queue, dict(args, interval=1, startup_events="none")))
        loop = asyncio.get_running_loop()
        delays = []
        await asyncio.sleep(1.5)
        for number in range(20):
            await asyncio.sleep(random.uniform(0, 1))
            action = "stop" if number % 2 == 0 else "start"
            path = "%s/api/v1/containers/%s/%s" % (url, target, action)
            await loop.run_in_executor(None, call, path, "POST", None, TOKEN)
            changed_at = time.monotonic()
            while True:
                event = await queue.get()
                if event["hzel"]["type"] == "state_changed" and event["hzel"]["container"]["id"] == target:
                    break
            delays.append(time.monotonic() - changed_at)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return delays

    delays = asyncio.run(measure())
    return "median %.2fs, worst %.2fs" % (statistics.median(delays), max(delays))


if __name__ == "__main__":
    main()
