# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hzel_events source driven through main() with an asyncio queue, over a mocked hzel API (HTTP level)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading

import pytest
import responses
import yaml

from ansible_collections.hzel.cloud.extensions.eda.plugins.event_source import hzel_events

API = "http://hzel.test"
LIST = API + "/api/v1/containers"
TOKEN = "tok-Secret-4242-abcdef"
# A guard against a hang, never an assertion about time.
HANG_GUARD = 60


def uuid(number):
    return "01942cf7-0000-7000-8000-%012d" % number


def record(number, hostname=None, state="running", **fields):
    value = {
        "id": uuid(number),
        "user_id": uuid(0),
        "hostname": hostname or "web-%d" % number,
        "state": state,
        "cpu_cores": 1,
        "memory_mb": 512,
        "disk_gb": 18,
        "created_at": "2026-11-29T00:00:00Z",
    }
    value.update(fields)
    return value


def reading(cpu=1.0, memory=10, disk=1.0):
    return {
        "cpu_percent": cpu,
        "memory_used_mb": memory,
        "memory_total_mb": 100,
        "disk_used_gb": disk,
        "disk_total_gb": 10,
    }


class FakeHzel:
    """The list and metrics endpoints; the test changes ``containers`` and ``metrics`` between polls."""

    def __init__(self, mock):
        self.containers = []
        self.metrics = {}
        # (status, body) replies served instead of the list, first in first out
        self.list_failures = []
        self.metrics_requests = []
        self.list_requests = 0
        self.hold = None
        # What answers the metrics requests; a test may put another function in its place.
        self.metrics_handler = self._metrics
        mock.add_callback("GET", LIST, callback=self._list)
        mock.add_callback("GET", re.compile(re.escape(LIST) + "/[^/]+/metrics"), callback=self._route_metrics)

    def _list(self, request):
        self.list_requests += 1
        if self.hold is not None:
            self.hold.wait()
        if self.list_failures:
            status, body = self.list_failures.pop(0)
            return status, {"Content-Type": "application/json"}, json.dumps(body)
        return 200, {"Content-Type": "application/json"}, json.dumps({"data": self.containers})

    def _route_metrics(self, request):
        return self.metrics_handler(request)

    def _metrics(self, request):
        container_id = request.url.split("/")[-2]
        self.metrics_requests.append(container_id)
        body = self.metrics.get(container_id, reading())
        if isinstance(body, tuple):
            return body[0], {"Content-Type": "application/json"}, json.dumps(body[1])
        text = body if isinstance(body, str) else json.dumps({"data": body})
        return 200, {"Content-Type": "application/json"}, text


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeHzel(mock)


class Run:
    """main() as a task whose polls the test releases one at a time."""

    def __init__(self, monkeypatch, args, queue=None):
        self.queue = queue if queue is not None else asyncio.Queue()
        self.arrived = asyncio.Queue()
        self.release = asyncio.Semaphore(0)
        monkeypatch.setattr(hzel_events, "_pause", self._pause)
        arguments = {"api_url": API, "api_token": TOKEN, "api_retries": 0}
        arguments.update(args)
        self.task = asyncio.ensure_future(hzel_events.main(self.queue, arguments))

    async def _pause(self, seconds):
        await self.arrived.put(seconds)
        await self.release.acquire()

    async def first(self):
        """The events of the first poll."""
        return await self._next_pause()

    async def poll(self):
        """Let one more poll run; its events."""
        self.release.release()
        return await self._next_pause()

    async def _next_pause(self):
        waiter = asyncio.ensure_future(self.arrived.get())
        done, _pending = await asyncio.wait(
            {waiter, self.task}, timeout=HANG_GUARD, return_when=asyncio.FIRST_COMPLETED
        )
        assert done, "the source neither polled nor ended"
        if self.task in done:
            waiter.cancel()
            self.task.result()
            raise AssertionError("the source ended")
        events = []
        while not self.queue.empty():
            events.append(self.queue.get_nowait())
        return events

    async def stop(self):
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def drive(monkeypatch, args, scenario):
    async def body():
        run = Run(monkeypatch, args)
        try:
            await scenario(run)
        finally:
            if not run.task.done():
                await run.stop()

    asyncio.run(body())


def kinds(events):
    return [(event["hzel"]["type"], event["hzel"].get("container", {}).get("hostname")) for event in events]


# --- startup ----------------------------------------------------------------------------------------------
def test_first_poll_is_silent_with_startup_events_none(api, monkeypatch):
    api.containers = [record(1), record(2, state="failed"), record(3, state="stopped")]

    async def scenario(run):
        assert await run.first() == []
        assert await run.poll() == []

    drive(monkeypatch, {"startup_events": "none"}, scenario)


def test_startup_reports_each_failed_container_once_by_default(api, monkeypatch):
    api.containers = [record(1), record(2, state="failed")]

    async def scenario(run):
        events = await run.first()
        assert kinds(events) == [("failed", "web-2")]
        assert events[0]["hzel"]["startup"] is True and events[0]["hzel"]["previous_state"] is None
        assert events[0]["meta"] == {"hosts": "web-2"}
        assert await run.poll() == []

    drive(monkeypatch, {}, scenario)


def test_startup_all_observes_every_container_and_reports_the_failed_ones_as_failed(api, monkeypatch):
    api.containers = [record(1), record(2, state="failed"), record(3, state="stopped")]

    async def scenario(run):
        assert kinds(await run.first()) == [("observed", "web-1"), ("failed", "web-2"), ("observed", "web-3")]
        assert await run.poll() == []

    drive(monkeypatch, {"startup_events": "all"}, scenario)


# --- changes ----------------------------------------------------------------------------------------------
def test_each_change_gives_exactly_one_event(api, monkeypatch):
    api.containers = [record(1), record(2, state="provisioning"), record(3)]

    async def scenario(run):
        assert await run.first() == []
        api.containers = [record(1, state="stopped"), record(2, state="failed"), record(4, state="provisioning")]
        events = await run.poll()
        assert kinds(events) == [
            ("state_changed", "web-1"),
            ("failed", "web-2"),
            ("created", "web-4"),
            ("vanished", "web-3"),
        ]
        by_kind = {event["hzel"]["type"]: event["hzel"] for event in events}
        assert by_kind["state_changed"]["previous_state"] == "running"
        assert by_kind["state_changed"]["container"]["state"] == "stopped"
        assert by_kind["failed"]["previous_state"] == "provisioning"
        assert by_kind["created"]["previous_state"] is None
        assert by_kind["vanished"]["container"] == record(3)
        assert by_kind["vanished"]["previous_state"] == "running"
        assert all(event["meta"]["hosts"] == event["hzel"]["container"]["hostname"] for event in events)
        assert await run.poll() == []

    drive(monkeypatch, {"startup_events": "none"}, scenario)


def test_a_new_container_already_failed_is_one_failed_event(api, monkeypatch):
    async def scenario(run):
        assert await run.first() == []
        api.containers = [record(7, hostname="fail-7", state="failed")]
        events = await run.poll()
        assert kinds(events) == [("failed", "fail-7")]
        assert events[0]["hzel"]["previous_state"] is None and events[0]["hzel"]["startup"] is False

    drive(monkeypatch, {}, scenario)


def test_a_change_undone_between_two_polls_is_not_seen(api, monkeypatch):
    api.containers = [record(1)]

    async def scenario(run):
        await run.first()
        api.containers = [record(1)]
        assert await run.poll() == []

    drive(monkeypatch, {}, scenario)


def test_events_carry_the_record_and_a_utc_observation_time(api, monkeypatch):
    async def scenario(run):
        await run.first()
        api.containers = [record(5)]
        (event,) = await run.poll()
        assert event["hzel"]["container"] == record(5)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event["hzel"]["observed_at"])

    drive(monkeypatch, {}, scenario)


def test_containers_sharing_a_hostname_give_events_without_meta_hosts(api, monkeypatch):
    api.containers = [record(1, hostname="db"), record(2, hostname="db"), record(3)]

    async def scenario(run):
        await run.first()
        api.containers = [
            record(1, hostname="db", state="stopped"),
            record(2, hostname="db"),
            record(3, state="stopped"),
        ]
        events = await run.poll()
        assert kinds(events) == [("state_changed", "db"), ("state_changed", "web-3")]
        assert "meta" not in events[0]
        assert events[1]["meta"] == {"hosts": "web-3"}

    drive(monkeypatch, {}, scenario)


def test_a_vanished_container_whose_hostname_is_taken_again_has_no_meta_hosts(api, monkeypatch):
    api.containers = [record(1, hostname="db")]

    async def scenario(run):
        await run.first()
        api.containers = [record(2, hostname="db")]
        events = await run.poll()
        assert kinds(events) == [("created", "db"), ("vanished", "db")]
        assert events[0]["meta"] == {"hosts": "db"}
        assert "meta" not in events[1]

    drive(monkeypatch, {}, scenario)


# --- filters ----------------------------------------------------------------------------------------------
def test_hostnames_filter_watches_only_matching_containers(api, monkeypatch):
    api.containers = [record(1, hostname="web-1"), record(2, hostname="db-1")]

    async def scenario(run):
        await run.first()
        api.containers = [
            record(1, hostname="web-1", state="stopped"),
            record(2, hostname="db-1", state="stopped"),
            record(3, hostname="web-9"),
        ]
        assert kinds(await run.poll()) == [("state_changed", "web-1"), ("created", "web-9")]

    drive(monkeypatch, {"hostnames": ["web-*"]}, scenario)


def test_state_filter_emits_only_changes_into_the_listed_states(api, monkeypatch):
    api.containers = [record(1), record(2)]

    async def scenario(run):
        await run.first()
        api.containers = [record(1, state="stopped"), record(2, state="failed")]
        assert kinds(await run.poll()) == [("state_changed", "web-1")]
        api.containers = [record(1, state="running"), record(2, state="failed")]
        assert await run.poll() == []

    drive(monkeypatch, {"state": ["stopped"]}, scenario)


def test_events_filter_emits_only_the_listed_types(api, monkeypatch):
    api.containers = [record(1), record(2)]

    async def scenario(run):
        await run.first()
        api.containers = [record(1, state="stopped"), record(3)]
        assert kinds(await run.poll()) == [("vanished", "web-2")]

    drive(monkeypatch, {"events": ["vanished"]}, scenario)


# --- thresholds -------------------------------------------------------------------------------------------
def test_a_threshold_fires_once_clears_with_hysteresis_and_fires_again(api, monkeypatch):
    api.containers = [record(1)]
    wid = uuid(1)

    async def scenario(run):
        api.metrics[wid] = reading(memory=50)
        assert await run.first() == []
        api.metrics[wid] = reading(memory=81)
        events = await run.poll()
        assert kinds(events) == [("threshold_exceeded", "web-1")]
        payload = events[0]["hzel"]
        assert (payload["metric"], payload["value"], payload["threshold"], payload["margin"]) == (
            "memory_percent",
            81.0,
            80.0,
            5.0,
        )
        assert payload["metrics"] == {"cpu_percent": 1.0, "memory_percent": 81.0, "disk_percent": 10.0}
        assert events[0]["meta"] == {"hosts": "web-1"}
        api.metrics[wid] = reading(memory=90)
        assert await run.poll() == []
        api.metrics[wid] = reading(memory=78)  # below the threshold, not below it less the margin
        assert await run.poll() == []
        api.metrics[wid] = reading(memory=75)
        assert kinds(await run.poll()) == [("threshold_cleared", "web-1")]
        api.metrics[wid] = reading(memory=79)
        assert await run.poll() == []
        api.metrics[wid] = reading(memory=85)
        assert kinds(await run.poll()) == [("threshold_exceeded", "web-1")]

    drive(monkeypatch, {"thresholds": {"memory_percent": 80}}, scenario)


def test_each_metric_has_its_own_threshold(api, monkeypatch):
    api.containers = [record(1)]

    async def scenario(run):
        await run.first()
        api.metrics[uuid(1)] = reading(cpu=95.5, disk=9.5)
        events = await run.poll()
        assert [(e["hzel"]["type"], e["hzel"]["metric"]) for e in events] == [
            ("threshold_exceeded", "cpu_percent"),
            ("threshold_exceeded", "disk_percent"),
        ]

    drive(monkeypatch, {"thresholds": {"cpu_percent": 90, "disk_percent": 90, "memory_percent": 90}}, scenario)


def test_a_reading_over_the_threshold_at_start_fires_unless_startup_events_is_none(api, monkeypatch):
    api.containers = [record(1)]
    api.metrics[uuid(1)] = reading(memory=95)

    async def fires(run):
        assert kinds(await run.first()) == [("threshold_exceeded", "web-1")]
        assert await run.poll() == []

    drive(monkeypatch, {"thresholds": {"memory_percent": 90}}, fires)

    async def baseline(run):
        assert await run.first() == []
        assert await run.poll() == []
        api.metrics[uuid(1)] = reading(memory=10)
        assert kinds(await run.poll()) == [("threshold_cleared", "web-1")]

    drive(monkeypatch, {"thresholds": {"memory_percent": 90}, "startup_events": "none"}, baseline)


def test_metrics_are_read_only_for_running_watched_containers(api, monkeypatch):
    api.containers = [record(1), record(2, state="stopped"), record(3, hostname="db-3"), record(4, state="failed")]

    async def scenario(run):
        await run.first()
        assert api.metrics_requests == [uuid(1)]
        await run.poll()
        assert api.metrics_requests == [uuid(1), uuid(1)]
        assert api.list_requests == 2

    drive(monkeypatch, {"thresholds": {"cpu_percent": 50}, "hostnames": ["web-*"]}, scenario)


def test_no_metrics_are_read_without_thresholds(api, monkeypatch):
    api.containers = [record(number) for number in range(1, 6)]

    async def scenario(run):
        await run.first()
        await run.poll()
        assert api.metrics_requests == []
        assert api.list_requests == 2

    drive(monkeypatch, {}, scenario)


def test_metrics_are_read_concurrently_within_metrics_workers(api, monkeypatch):
    api.containers = [record(number) for number in range(1, 9)]
    lock = threading.Lock()
    state = {"now": 0, "most": 0}
    barrier = threading.Barrier(4)
    original = api.metrics_handler

    def metrics(request):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        try:
            barrier.wait(HANG_GUARD)  # four requests must be in flight at once to pass here
        finally:
            with lock:
                state["now"] -= 1
        return original(request)

    api.metrics_handler = metrics

    async def scenario(run):
        await run.first()
        assert state["most"] == 4
        assert len(api.metrics_requests) == 8

    drive(monkeypatch, {"thresholds": {"cpu_percent": 50}, "metrics_workers": 4}, scenario)


def test_a_container_that_stops_over_a_threshold_starts_afresh_when_it_runs_again(api, monkeypatch):
    api.containers = [record(1)]

    async def scenario(run):
        await run.first()
        api.metrics[uuid(1)] = reading(memory=95)
        assert kinds(await run.poll()) == [("threshold_exceeded", "web-1")]
        api.containers = [record(1, state="stopped")]
        assert kinds(await run.poll()) == [("state_changed", "web-1")]
        api.containers = [record(1)]
        events = await run.poll()
        assert kinds(events) == [("state_changed", "web-1"), ("threshold_exceeded", "web-1")]
        assert events[1]["hzel"]["previous_state"] == "stopped"

    drive(monkeypatch, {"thresholds": {"memory_percent": 90}}, scenario)


# --- failures ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_ends_the_source_without_the_token_in_the_message_or_logs(api, monkeypatch, caplog, status):
    api.list_failures = [(status, {"error": {"code": "UNAUTHORIZED", "message": "bad token %s" % TOKEN}})]
    caplog.set_level(logging.DEBUG)

    async def body():
        with pytest.raises(hzel_events.HzelAuthError) as failure:
            await hzel_events.main(asyncio.Queue(), {"api_url": API, "api_token": TOKEN, "api_retries": 0})
        return str(failure.value)

    message = asyncio.run(body())
    assert "refused the api_token" in message
    assert TOKEN not in message and TOKEN not in caplog.text
    assert "********" in message


def test_a_refused_token_on_a_metrics_read_ends_the_source(api):
    api.containers = [record(1)]
    api.metrics[uuid(1)] = (401, {"error": {"code": "UNAUTHORIZED", "message": "no"}})

    async def body():
        with pytest.raises(hzel_events.HzelAuthError):
            await hzel_events.main(
                asyncio.Queue(), {"api_url": API, "api_token": TOKEN, "thresholds": {"cpu_percent": 9}}
            )

    asyncio.run(body())


def test_a_burst_of_503_gives_one_poll_failed_then_one_poll_recovered(api, monkeypatch):
    api.containers = [record(1)]
    unavailable = (503, {"error": {"code": "SERVICE_UNAVAILABLE", "message": "Service unavailable"}})

    async def scenario(run):
        assert await run.first() == []
        api.list_failures = [unavailable] * 5
        assert await run.poll() == []
        events = await run.poll()
        assert kinds(events) == [("poll_failed", None)]
        failed = events[0]
        assert "meta" not in failed
        assert failed["hzel"]["failures"] == 2 and failed["hzel"]["status"] == 503
        assert "503" in failed["hzel"]["error"]
        for _poll in range(3):
            assert await run.poll() == []
        api.containers = [record(1, state="stopped")]
        events = await run.poll()
        assert kinds(events) == [("poll_recovered", None), ("state_changed", "web-1")]
        assert "meta" not in events[0]
        assert events[0]["hzel"]["failures"] == 5
        assert events[0]["hzel"]["failing_since"] == failed["hzel"]["failing_since"]
        assert await run.poll() == []

    drive(monkeypatch, {"poll_failures": 2}, scenario)


def test_fewer_failed_polls_than_poll_failures_emit_nothing(api, monkeypatch):
    api.containers = [record(1)]

    async def scenario(run):
        await run.first()
        api.list_failures = [(503, {"error": {"code": "SERVICE_UNAVAILABLE", "message": "x"}})] * 2
        assert await run.poll() == []
        assert await run.poll() == []
        assert await run.poll() == []

    drive(monkeypatch, {}, scenario)


def test_poll_failed_error_text_cannot_be_a_template(api, monkeypatch):
    hostile = "{{ lookup('pipe', 'touch /tmp/owned') }} {% if 1 %} {# c #} " + TOKEN

    async def scenario(run):
        api.list_failures = [(500, {"error": {"code": "INTERNAL_ERROR", "message": hostile}})]
        (event,) = await run.first()
        error = event["hzel"]["error"]
        assert event["hzel"]["type"] == "poll_failed"
        assert "lookup" in error
        assert not re.search(r"\{[{%#]", error)
        assert TOKEN not in error

    drive(monkeypatch, {"poll_failures": 1}, scenario)


# --- hostile records --------------------------------------------------------------------------------------
MARKER = "{{ lookup('pipe', 'id') }}"
HOSTILE = [
    ("hostname", MARKER),
    ("hostname", "web-1{% raw %}"),
    ("hostname", "{#x#}"),
    ("hostname", "Web_1"),
    ("id", MARKER),
    ("id", "not-a-uuid"),
    ("user_id", MARKER),
    ("state", MARKER),
    ("state", "paused"),
    ("created_at", MARKER),
    ("created_at", "2026-13-45T00:00:00Z"),
    ("cpu_cores", MARKER),
    ("cpu_cores", True),
    ("memory_mb", 1.5),
    ("disk_gb", None),
]


@pytest.mark.parametrize("field, value", HOSTILE)
def test_hostile_records_are_never_emitted(api, monkeypatch, caplog, field, value):
    bad = record(9, hostname="bad-9")
    bad[field] = value

    async def scenario(run):
        await run.first()
        api.containers = [record(1), bad]
        events = await run.poll()
        assert kinds(events) == [("created", "web-1")]
        assert MARKER not in json.dumps(events)
        warnings = [r for r in caplog.records if "do not match the API reference" in r.getMessage()]
        assert len(warnings) == 1
        assert "data[1]" in warnings[0].getMessage()

    caplog.set_level(logging.WARNING)
    drive(monkeypatch, {"startup_events": "all"}, scenario)


def test_a_record_with_a_duplicate_id_is_skipped(api, monkeypatch):
    async def scenario(run):
        await run.first()
        api.containers = [record(1), record(1, hostname="other")]
        assert kinds(await run.poll()) == [("created", "web-1")]

    drive(monkeypatch, {}, scenario)


def test_extra_fields_of_a_record_are_not_emitted(api, monkeypatch):
    async def scenario(run):
        await run.first()
        api.containers = [record(1, note=MARKER)]
        (event,) = await run.poll()
        assert "note" not in event["hzel"]["container"]

    drive(monkeypatch, {}, scenario)


@pytest.mark.parametrize(
    "body",
    [
        '{"data": {"cpu_percent": NaN, "memory_used_mb": 1, "memory_total_mb": 2, "disk_used_gb": 1, '
        '"disk_total_gb": 2}}',
        '{"data": {"cpu_percent": 1, "memory_used_mb": Infinity, "memory_total_mb": 2, "disk_used_gb": 1, '
        '"disk_total_gb": 2}}',
        '{"data": {"cpu_percent": 1, "memory_used_mb": 1, "memory_total_mb": 0, "disk_used_gb": 1, '
        '"disk_total_gb": 2}}',
        '{"data": {"cpu_percent": "{{ 7 }}", "memory_used_mb": 1, "memory_total_mb": 2, "disk_used_gb": 1, '
        '"disk_total_gb": 2}}',
        # An integer too large for a float, and finite figures whose quotient is not.
        '{"data": {"cpu_percent": 1, "memory_used_mb": 1, "memory_total_mb": 2, "disk_used_gb": %s, '
        '"disk_total_gb": 2}}' % ("9" * 400),
        '{"data": {"cpu_percent": 1, "memory_used_mb": 1e300, "memory_total_mb": 1e-300, "disk_used_gb": 1, '
        '"disk_total_gb": 2}}',
    ],
)
def test_metrics_that_are_not_finite_numbers_are_never_emitted(api, monkeypatch, caplog, body):
    api.containers = [record(1)]
    api.metrics[uuid(1)] = body
    caplog.set_level(logging.WARNING)

    async def scenario(run):
        assert await run.first() == []
        assert await run.poll() == []
        assert any("could not be read" in r.getMessage() for r in caplog.records)

    drive(monkeypatch, {"thresholds": {"cpu_percent": 0.5, "memory_percent": 1}, "threshold_margin": 0.1}, scenario)


def test_no_field_of_any_event_can_be_a_template(api, monkeypatch):
    api.containers = [record(1), record(2, state="failed")]
    api.metrics[uuid(1)] = reading(memory=99)

    async def scenario(run):
        events = await run.first()
        api.containers = [record(1, state="stopped"), record(3, hostname=MARKER), record(4, state=MARKER)]
        events += await run.poll()
        api.list_failures = [(500, {"error": {"code": "X{{", "message": MARKER}})]
        events += await run.poll()
        events += await run.poll()
        assert {event["hzel"]["type"] for event in events} == {
            "failed",
            "threshold_exceeded",
            "state_changed",
            "vanished",
            "poll_failed",
            "poll_recovered",
        }
        assert not re.search(r"\{[{%#]", json.dumps(events))

    drive(monkeypatch, {"thresholds": {"memory_percent": 90}, "poll_failures": 1}, scenario)


# --- the queue and cancellation ---------------------------------------------------------------------------
def test_a_slow_consumer_on_a_queue_of_size_one_loses_nothing(api, monkeypatch):
    async def body():
        queue = asyncio.Queue(maxsize=1)
        run = Run(monkeypatch, {}, queue=queue)
        received = []

        async def slow_consumer():
            while True:
                received.append(await queue.get())
                for _turn in range(20):
                    await asyncio.sleep(0)

        consumer = asyncio.ensure_future(slow_consumer())
        waiter = asyncio.ensure_future(run.arrived.get())
        await asyncio.wait({waiter}, timeout=HANG_GUARD)
        api.containers = [record(number, state="provisioning") for number in range(1, 31)]
        run.release.release()
        waiter = asyncio.ensure_future(run.arrived.get())
        await asyncio.wait({waiter}, timeout=HANG_GUARD)
        api.containers = [record(number, state="failed") for number in range(1, 31)]
        run.release.release()
        waiter = asyncio.ensure_future(run.arrived.get())
        await asyncio.wait({waiter}, timeout=HANG_GUARD)
        for _turn in range(100000):  # a bound instead of a hang when events were lost
            if queue.empty() and len(received) >= 60:
                break
            await asyncio.sleep(0)
        consumer.cancel()
        await run.stop()
        return received

    received = asyncio.run(body())
    expected = [("created", "web-%d" % n) for n in sorted(range(1, 31), key=lambda n: "web-%d" % n)]
    expected += [("failed", "web-%d" % n) for n in sorted(range(1, 31), key=lambda n: "web-%d" % n)]
    assert kinds(received) == expected


def test_cancellation_is_prompt_while_a_request_hangs(api, monkeypatch):
    api.hold = threading.Event()

    async def body():
        task = asyncio.ensure_future(hzel_events.main(asyncio.Queue(), {"api_url": API, "api_token": TOKEN}))
        while api.list_requests == 0:
            await asyncio.sleep(0.01)
        task.cancel()
        done, _pending = await asyncio.wait({task}, timeout=HANG_GUARD)
        return task in done and task.cancelled()

    try:
        assert asyncio.run(body())
    finally:
        api.hold.set()


def test_cancellation_between_polls_ends_the_source(api, monkeypatch):
    async def scenario(run):
        await run.first()
        await run.stop()
        assert run.task.cancelled()

    drive(monkeypatch, {}, scenario)


# --- arguments --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        ({"intervall": 5}, "'intervall' (did you mean 'interval'?)"),
        ({"treshold_margin": 5}, "did you mean 'threshold_margin'?"),
        ({"thresholds": {"memory": 5}}, "'memory' (did you mean 'memory_percent'?)"),
        ({"interval": 0.5}, "interval must be at least 1"),
        ({"interval": 7200}, "at most 3600"),
        ({"state": ["runing"]}, "did you mean 'running'?"),
        ({"events": ["fail"]}, "did you mean 'failed'?"),
        ({"startup_events": "some"}, "startup_events must be one of none, failed, all"),
        ({"thresholds": {"cpu_percent": 0}}, "thresholds.cpu_percent must be greater than 0"),
        ({"thresholds": {"cpu_percent": 10}, "threshold_margin": 10}, "threshold_margin must be less than"),
        ({"metrics_workers": 65}, "metrics_workers must be at least 1 and at most 64"),
        ({"poll_failures": 0}, "poll_failures"),
        ({"validate_certs": "maybe"}, "validate_certs must be true or false"),
        ({"api_retries": "many"}, "api_retries must be a number"),
        ({"hostnames": []}, "hostnames must be a non-empty list"),
        ({"interval": 10, "metrics_interval": 5}, "metrics_interval must not be below interval (10 s)"),
        ({"metrics_interval": 10**400}, "metrics_interval must be at least 1 and at most 86400"),
        ({"shard": {"count": 3, "index": 3}}, "shard.index must be from 0 to 2"),
        ({"shard": {"count": 3}}, "shard needs index"),
        ({"shard": {"count": 3, "index": 0, "cont": 1}}, "'cont' (did you mean 'count'?)"),
        ({"api_rate_limit": 0}, "api_rate_limit must be greater than 0"),
        ({"api_rate_limit": "fast"}, "api_rate_limit must be a number"),
    ],
)
def test_bad_arguments_end_the_source_naming_the_argument(args, message):
    arguments = {"api_token": TOKEN}
    arguments.update(args)
    with pytest.raises(hzel_events.InvalidParameters) as failure:
        asyncio.run(hzel_events.main(asyncio.Queue(), arguments))
    assert message in str(failure.value)


def test_a_missing_token_ends_the_source(monkeypatch):
    monkeypatch.delenv("HZEL_API_TOKEN", raising=False)
    with pytest.raises(hzel_events.HzelAuthError, match="HZEL_API_TOKEN"):
        asyncio.run(hzel_events.main(asyncio.Queue(), {}))


def test_the_shared_options_fall_back_to_the_modules_environment_variables():
    settings = hzel_events.parse_arguments(
        {"eda_feedback_queue": object()},
        {
            "HZEL_API_URL": API,
            "HZEL_API_TOKEN": TOKEN,
            "HZEL_VALIDATE_CERTS": "false",
            "HZEL_API_TIMEOUT": "7.5",
            "HZEL_API_RETRIES": "2",
            "HZEL_API_RATE_LIMIT": "12.5",
        },
    )
    assert settings.api == {
        "api_url": API,
        "api_token": TOKEN,
        "validate_certs": False,
        "api_timeout": 7.5,
        "api_retries": 2,
        "api_rate_limit": 12.5,
    }
    given = hzel_events.parse_arguments(
        {"api_url": "https://other", "api_retries": 0},
        {"HZEL_API_TOKEN": TOKEN, "HZEL_API_URL": API, "HZEL_API_RETRIES": "9"},
    )
    assert given.api["api_url"] == "https://other" and given.api["api_retries"] == 0


def test_defaults():
    settings = hzel_events.parse_arguments({"api_token": TOKEN}, {})
    assert settings.interval == 30 and settings.startup_events == "failed" and settings.thresholds == {}
    assert settings.poll_failures == 3 and settings.metrics_workers == 8 and settings.threshold_margin == 5
    assert settings.states == ("provisioning", "running", "stopped", "failed") and settings.hostnames == ("*",)


def test_documentation_matches_the_accepted_arguments():
    documented = yaml.safe_load(hzel_events.DOCUMENTATION)["options"]
    assert sorted(documented) == sorted(hzel_events.ARGUMENTS)
    for name, spec in hzel_events.ARGUMENTS.items():
        doc = documented[name]
        assert doc["type"] == spec.type, name
        if spec.default is None:
            assert "default" not in doc, name
        else:
            assert doc["default"] == spec.default, name
        assert tuple(doc.get("choices") or ()) == (spec.choices or ()), name
        if spec.env:
            assert spec.env in " ".join(doc["description"]), name
    examples = yaml.safe_load(hzel_events.EXAMPLES)
    for source in examples[0]["sources"]:
        hzel_events.parse_arguments(dict(source["hzel.cloud.hzel_events"], api_token=TOKEN), {})


def test_documentation_of_the_shared_options_matches_the_modules():
    from ansible_collections.hzel.cloud.plugins.module_utils._options import API_OPTIONS

    for name, option in API_OPTIONS.items():
        spec = hzel_events.ARGUMENTS[name]
        assert (spec.type, spec.default, spec.env) == (option.type, option.default, option.env)


@pytest.mark.parametrize(
    "reading",
    [
        {"memory_used_mb": 9e15, "memory_total_mb": 1e-300},
        {"disk_used_gb": int("9" * 400)},
    ],
)
def test_a_reading_whose_percentages_are_not_finite_numbers_gives_none(reading):
    base = {"cpu_percent": 1, "memory_used_mb": 1, "memory_total_mb": 2, "disk_used_gb": 1, "disk_total_gb": 2}
    assert hzel_events.percentages(dict(base, **reading)) is None
    assert hzel_events.percentages(base) == {"cpu_percent": 1.0, "memory_percent": 50.0, "disk_percent": 50.0}


@pytest.mark.parametrize("source", ["argument", "environment"])
def test_on_cores_with_secret_masking_the_token_is_registered_with_core(api, monkeypatch, source):
    secrets = pytest.importorskip("ansible.module_utils.secrets", reason="ansible-core 2.22 and later mask secrets")
    token = "eda-%s-token-0123" % source
    arguments = {"api_url": API, "api_retries": 0}
    if source == "argument":
        arguments["api_token"] = token
    else:
        monkeypatch.setenv("HZEL_API_TOKEN", token)
    assert secrets.mask_secrets(token) == token
    # The API refuses the token: the source ends after its first request, the token registered.
    api.list_failures = [(401, {"error": {"code": "UNAUTHORIZED", "message": "no"}})]

    async def body():
        with pytest.raises(hzel_events.HzelAuthError):
            await hzel_events.main(asyncio.Queue(), arguments)

    asyncio.run(body())
    assert api.list_requests == 1
    assert secrets.mask_secrets("echoed %s" % token) == "echoed $REDACTED$"


# --- thresholds at their bounds ---------------------------------------------------------------------------
def test_a_reading_at_the_threshold_fires_so_that_a_threshold_of_100_can(api, monkeypatch):
    api.containers = [record(1)]
    wid = uuid(1)

    async def scenario(run):
        api.metrics[wid] = reading(memory=50)
        assert await run.first() == []
        api.metrics[wid] = reading(memory=100)
        events = await run.poll()
        assert kinds(events) == [("threshold_exceeded", "web-1")]
        assert (events[0]["hzel"]["value"], events[0]["hzel"]["threshold"]) == (100.0, 100.0)
        api.metrics[wid] = reading(memory=95)
        assert kinds(await run.poll()) == [("threshold_cleared", "web-1")]

    drive(monkeypatch, {"thresholds": {"memory_percent": 100}}, scenario)


def test_a_reading_held_at_the_threshold_with_no_margin_fires_once(api, monkeypatch):
    api.containers = [record(1)]
    wid = uuid(1)

    async def scenario(run):
        api.metrics[wid] = reading(memory=10)
        assert await run.first() == []
        api.metrics[wid] = reading(memory=80)
        assert kinds(await run.poll()) == [("threshold_exceeded", "web-1")]
        assert await run.poll() == []
        assert await run.poll() == []
        api.metrics[wid] = reading(memory=79)
        assert kinds(await run.poll()) == [("threshold_cleared", "web-1")]

    drive(monkeypatch, {"thresholds": {"memory_percent": 80}, "threshold_margin": 0}, scenario)


# --- numbers too large for a float ------------------------------------------------------------------------
HUGE = 10**400


@pytest.mark.parametrize(
    "args, message",
    [
        ({"interval": HUGE}, "interval must be at least 1 and at most 3600, got a number of 401 digits"),
        ({"interval": -HUGE}, "interval must be at least 1 and at most 3600, got a number of 401 digits"),
        ({"threshold_margin": HUGE}, "threshold_margin must be at least 0 and at most 100, got a number of 401"),
        ({"thresholds": {"cpu_percent": HUGE}}, "thresholds.cpu_percent must be greater than 0 and at most 100"),
        ({"api_timeout": HUGE}, "api_timeout must be greater than 0 and at most 3600, got a number of 401 digits"),
        ({"api_retries": HUGE}, "api_retries must be at least 0 and at most 20, got a number of 401 digits"),
        ({"metrics_workers": HUGE}, "metrics_workers must be at least 1 and at most 64, got a number of 401"),
        ({"poll_failures": HUGE}, "poll_failures must be at least 1 and at most 1000, got a number of 401"),
        ({"interval": "9" * 400}, "interval must be a finite number"),
    ],
)
def test_a_number_too_large_for_a_float_ends_the_source_with_one_clear_message(args, message):
    arguments = {"api_token": TOKEN}
    arguments.update(args)
    with pytest.raises(hzel_events.InvalidParameters) as failure:
        asyncio.run(hzel_events.main(asyncio.Queue(), arguments))
    assert message in str(failure.value)
    assert len(str(failure.value)) < 200


# --- a listed container with a malformed record -----------------------------------------------------------
def kept_warnings(caplog):
    return [r.getMessage() for r in caplog.records if "the last good record stands" in r.getMessage()]


@pytest.mark.parametrize("field, value", [("created_at", "yesterday"), ("hostname", MARKER), ("state", "paused")])
def test_a_listed_container_with_a_malformed_record_keeps_its_last_good_record(api, monkeypatch, caplog, field, value):
    bad = record(2)
    bad[field] = value

    async def scenario(run):
        api.containers = [record(1), record(2)]
        assert await run.first() == []
        api.containers = [record(1), bad]
        assert await run.poll() == []
        assert await run.poll() == []
        warnings = kept_warnings(caplog)
        assert len(warnings) == 1
        assert "web-2: %s" % field in warnings[0] and MARKER not in warnings[0]
        # Back to a good record: nothing happened to it.
        api.containers = [record(1), record(2)]
        assert await run.poll() == []
        # Malformed again later: warned again, once.
        api.containers = [record(1), bad]
        assert await run.poll() == []
        assert len(kept_warnings(caplog)) == 2
        # A change seen once its record is good again, against the last good record.
        api.containers = [record(1), record(2, state="stopped")]
        assert kinds(await run.poll()) == [("state_changed", "web-2")]
        # No longer listed: it vanished, once.
        api.containers = [record(1)]
        events = await run.poll()
        assert kinds(events) == [("vanished", "web-2")]
        assert events[0]["hzel"]["container"]["state"] == "stopped"

    caplog.set_level(logging.WARNING)
    drive(monkeypatch, {"startup_events": "none"}, scenario)


def test_a_malformed_record_of_a_running_container_keeps_its_threshold_state(api, monkeypatch):
    wid = uuid(1)

    async def scenario(run):
        api.containers = [record(1)]
        api.metrics[wid] = reading(memory=95)
        assert kinds(await run.first()) == [("threshold_exceeded", "web-1")]
        api.containers = [record(1, created_at="2026-13-45T00:00:00Z")]
        assert await run.poll() == []
        api.containers = [record(1)]
        assert await run.poll() == []

    drive(monkeypatch, {"thresholds": {"memory_percent": 90}}, scenario)


# --- metrics on a budget, shards, api_rate_limit ------------------------------------------------------------
def test_metrics_interval_reads_each_container_once_per_metrics_interval_spread_over_the_polls(api, monkeypatch):
    api.containers = [record(number) for number in range(1, 13)]

    async def scenario(run):
        per_poll = []
        seen = len(api.metrics_requests)
        await run.first()
        for _poll in range(8):
            per_poll.append(api.metrics_requests[seen:])
            seen = len(api.metrics_requests)
            await run.poll()
        # 12 containers, a poll every 5 s, each read every 20 s: 3 readings a poll, every container once in 4 polls.
        assert [len(batch) for batch in per_poll] == [3] * 8
        for start in (0, 4):
            assert sorted(sum(per_poll[start : start + 4], [])) == sorted(uuid(number) for number in range(1, 13))
        assert api.list_requests == 9

    drive(monkeypatch, {"interval": 5, "metrics_interval": 20, "thresholds": {"cpu_percent": 50}}, scenario)


def test_a_reading_over_a_threshold_is_seen_within_metrics_interval(api, monkeypatch):
    api.containers = [record(number) for number in range(1, 11)]

    async def scenario(run):
        await run.first()
        api.metrics[uuid(7)] = reading(cpu=95.0)
        events = []
        for _poll in range(5):  # metrics_interval / interval polls, and one more
            events.extend(await run.poll())
        assert kinds(events) == [("threshold_exceeded", "web-7")]

    drive(
        monkeypatch,
        {"interval": 2, "metrics_interval": 10, "thresholds": {"cpu_percent": 90}, "startup_events": "none"},
        scenario,
    )


def test_a_shard_watches_reads_and_emits_only_its_own_containers(api, monkeypatch):
    import zlib

    api.containers = [record(number) for number in range(1, 21)]
    mine = sorted(r["hostname"] for r in api.containers if zlib.crc32(r["hostname"].encode("utf-8")) % 3 == 1)
    ids = {r["hostname"]: r["id"] for r in api.containers}

    async def scenario(run):
        events = await run.first()
        assert sorted(hostname for _kind, hostname in kinds(events)) == mine
        assert sorted(api.metrics_requests) == sorted(ids[name] for name in mine)
        for item in api.containers:
            item["state"] = "stopped"
        events = await run.poll()
        assert sorted(hostname for _kind, hostname in kinds(events)) == mine

    drive(
        monkeypatch,
        {"shard": {"count": "3", "index": 1}, "startup_events": "all", "thresholds": {"cpu_percent": 90}},
        scenario,
    )


def test_api_rate_limit_reaches_the_source_s_client(api, monkeypatch):
    built = []
    real = hzel_events.build_client

    def recording(options, **kwargs):
        client = real(options, **kwargs)
        built.append(client.transport.gate.rate_limit)
        return client

    monkeypatch.setattr(hzel_events, "build_client", recording)
    monkeypatch.setenv("HZEL_API_RATE_LIMIT", "3.5")

    async def scenario(run):
        await run.first()

    drive(monkeypatch, {}, scenario)
    assert built == [3.5]


# --- groups -------------------------------------------------------------------------------------------------
class FakeClock:
    """The seconds the watcher sees; the test moves them."""

    def __init__(self, monkeypatch):
        self.now = 5000.0
        monkeypatch.setattr(hzel_events, "_clock", lambda: self.now)


def group_events(events):
    return [event for event in events if event["hzel"]["type"] == "group_metrics"]


def test_each_poll_gives_one_group_metrics_event_per_group_without_meta(api, monkeypatch):
    api.containers = [record(1), record(2), record(3, hostname="db-1"), record(4, state="failed")]
    api.metrics = {uuid(1): reading(cpu=10.0, memory=20), uuid(2): reading(cpu=30.0, memory=40)}

    async def scenario(run):
        events = await run.first()
        assert [event["hzel"]["type"] for event in events] == ["failed", "group_metrics", "group_metrics"]
        db, web = group_events(events)
        assert "meta" not in web and "meta" not in db
        assert (db["hzel"]["group"], web["hzel"]["group"]) == ("db", "web")
        assert web["hzel"]["hostname_pattern"] == "web-{index}"
        assert web["hzel"]["members"] == {"total": 3, "running": 2, "counted": 2, "warming": 0, "failed": 1}
        assert web["hzel"]["mean"] == {"cpu_percent": 20.0, "memory_percent": 30.0, "disk_percent": 10.0}
        assert web["hzel"]["max"] == {"cpu_percent": 30.0, "memory_percent": 40.0, "disk_percent": 10.0}
        assert web["hzel"]["window"] == {"min": None, "max": None}
        assert "autoscale" not in web["hzel"]
        assert db["hzel"]["members"]["counted"] == 1
        assert sorted(api.metrics_requests) == sorted(uuid(number) for number in (1, 2, 3))
        assert len(group_events(await run.poll())) == 2

    drive(
        monkeypatch,
        {"groups": {"web": {"hostname_pattern": "web-{index}"}, "db": {"hostname_pattern": "db-{index}"}}},
        scenario,
    )


def test_group_members_are_read_every_poll_whatever_metrics_interval(api, monkeypatch):
    api.containers = [record(number) for number in range(1, 5)] + [record(9, hostname="api-9")]

    async def scenario(run):
        await run.first()
        seen = len(api.metrics_requests)
        await run.poll()
        batch = api.metrics_requests[seen:]
        # Every web member each poll; api-9 only in the threshold readings' turn (one container in 4 polls).
        assert sorted(set(batch) - {uuid(9)}) == sorted(uuid(number) for number in range(1, 5))
        assert len(batch) == len(set(batch))

    drive(
        monkeypatch,
        {
            "interval": 5,
            "metrics_interval": 20,
            "thresholds": {"cpu_percent": 90},
            "groups": {"web": {"hostname_pattern": "web-{index}"}},
        },
        scenario,
    )


def test_a_member_seen_starting_warms_up_by_the_source_s_clock(api, monkeypatch):
    clock = FakeClock(monkeypatch)
    api.containers = [record(1), record(2, state="provisioning")]

    async def scenario(run):
        assert group_events(await run.first())[0]["hzel"]["members"]["counted"] == 1
        api.containers[1]["state"] = "running"
        clock.now += 5
        members = group_events(await run.poll())[0]["hzel"]["members"]
        assert (members["counted"], members["warming"]) == (1, 1)
        clock.now += 20
        members = group_events(await run.poll())[0]["hzel"]["members"]
        assert (members["counted"], members["warming"]) == (2, 0)

    drive(monkeypatch, {"groups": {"web": {"hostname_pattern": "web-{index}", "warmup": "20"}}}, scenario)


def test_autoscale_decides_up_then_waits_for_the_cooldown_with_arguments_given_as_text(api, monkeypatch):
    clock = FakeClock(monkeypatch)
    api.containers = [record(1), record(2)]
    api.metrics = {uuid(1): reading(cpu=95.0), uuid(2): reading(cpu=85.0)}
    policy = {"metric": "cpu_percent", "high": "80", "low": "10", "cooldown": "60", "stabilization": "0"}

    async def scenario(run):
        decision = group_events(await run.first())[0]["hzel"]["autoscale"]
        assert decision["direction"] == "up" and "above high 80" in decision["reason"]
        assert (decision["high"], decision["low"], decision["cooldown"]) == (80.0, 10.0, 60.0)
        clock.now += 30
        assert group_events(await run.poll())[0]["hzel"]["autoscale"]["direction"] is None
        clock.now += 30
        assert group_events(await run.poll())[0]["hzel"]["autoscale"]["direction"] == "up"

    drive(monkeypatch, {"groups": {"web": {"hostname_pattern": "web-{index}", "autoscale": policy}}}, scenario)


def test_without_groups_no_group_event_is_emitted_and_no_metrics_are_read(api, monkeypatch):
    api.containers = [record(1)]

    async def scenario(run):
        assert await run.first() == []
        assert api.metrics_requests == []

    drive(monkeypatch, {}, scenario)


@pytest.mark.parametrize(
    "args, message",
    [
        ({"group": {}}, "'group' (did you mean 'groups'?)"),
        ({"groups": ["web"]}, "groups must be a mapping"),
        ({"groups": {"web": {"hostname_patern": "web-{index}"}}}, "'hostname_patern' (did you mean"),
        ({"groups": {"web": {"hostname_pattern": "{index}"}}}, "groups.web.hostname_pattern must start with"),
        ({"groups": {"web": {"hostname_pattern": "web-{index}", "window": 86401}}}, "groups.web.window must be"),
        (
            {"groups": {"web": {"hostname_pattern": "web-{index}"}}, "events": ["failed"]},
            "groups needs group_metrics among events",
        ),
        ({"events": ["group_metric"]}, "did you mean 'group_metrics'?"),
    ],
)
def test_bad_groups_end_the_source_naming_the_key(args, message):
    arguments = {"api_token": TOKEN}
    arguments.update(args)
    with pytest.raises(hzel_events.InvalidParameters) as failure:
        asyncio.run(hzel_events.main(asyncio.Queue(), arguments))
    assert message in str(failure.value)


def test_documentation_of_groups_matches_the_accepted_keys():
    from ansible_collections.hzel.cloud.plugins.module_utils import _watch

    group_doc = yaml.safe_load(hzel_events.DOCUMENTATION)["options"]["groups"]["suboptions"]
    for documented, keys in (
        (group_doc, _watch.GROUP_KEYS),
        (group_doc["autoscale"]["suboptions"], _watch.AUTOSCALE_KEYS),
    ):
        assert sorted(documented) == sorted(keys)
        for name, bounds in keys.items():
            if bounds is not None:
                assert documented[name]["default"] == bounds.default, name
                assert documented[name]["type"] == ("int" if bounds.integer else "float"), name
    assert group_doc["hostname_pattern"]["required"] is True
    metric = group_doc["autoscale"]["suboptions"]["metric"]
    assert (tuple(metric["choices"]), metric["default"]) == (_watch.AUTOSCALE_METRICS, _watch.AUTOSCALE_METRIC_DEFAULT)


def test_metrics_interval_holds_for_fewer_containers_than_polls_in_it(api, monkeypatch):
    # Three containers, a poll every 5 s, each read every 60 s: three readings in twelve polls, not one a poll.
    api.containers = [record(number) for number in range(1, 4)]

    async def scenario(run):
        await run.first()
        for _poll in range(23):
            await run.poll()
        assert sorted(api.metrics_requests) == sorted(uuid(number) for number in range(1, 4) for _twice in (1, 2))

    drive(monkeypatch, {"interval": 5, "metrics_interval": 60, "thresholds": {"cpu_percent": 50}}, scenario)
