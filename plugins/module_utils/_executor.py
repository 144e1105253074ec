# The executor of the hzel modules: reads, plans, then applies a fleet concurrently and waits for it as one.
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""The executor: read, plan, then apply a fleet concurrently and wait for all of it at once.

Plain code over the containers API, the desired items, the settings and a
check-mode flag; ``sleep`` and ``clock`` can be replaced, so it is tested
without Ansible and without waiting.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ansible_collections.hzel.cloud.plugins.module_utils._containers import ContainersAPI
from ansible_collections.hzel.cloud.plugins.module_utils._plan import (
    LISTED_PROBLEMS,
    DesiredContainer,
    FleetSettings,
    Step,
    adopt,
    describe,
    diff_view,
    make_plan,
    reads_by_id,
)
from ansible_collections.hzel.cloud.plugins.module_utils._transport import HzelError, HzelNotFound, plain_number

# Poll provisioning containers often at first, so that a short provisioning
# is seen within half a second of its end, then back off for long ones.
POLL_FIRST = 0.1
POLL_FACTOR = 1.5
POLL_SHORT_CAP = 0.4
POLL_LONG_CAP = 2.0
POLL_SHORT_PERIOD = 10.0
# How much of an unexpected error's own text a failure message carries.
UNEXPECTED_TEXT_LIMIT = 300

Record = Dict[str, Any]


def unique_names(names: Sequence[str], ids: Sequence[Optional[str]]) -> List[str]:
    """The names, with ``hostname (id)`` where a hostname repeats (an admin may see two containers of one name)."""
    counts = Counter(names)
    return [
        "%s (%s)" % (name, ids[index]) if counts[name] > 1 and ids[index] else name for index, name in enumerate(names)
    ]


def unexpected_failure(exc: BaseException, scrub: Callable[[str], str]) -> HzelError:
    """An error that is not an HzelError, as one item's failure: its class name and a scrubbed, bounded excerpt."""
    try:
        text = " ".join(scrub(str(exc)).split())
    except Exception:  # an exception whose text cannot even be read still fails one item only
        text = ""
    if len(text) > UNEXPECTED_TEXT_LIMIT:
        text = text[: UNEXPECTED_TEXT_LIMIT - 3] + "..."
    return HzelError("Unexpected error (%s)%s" % (type(exc).__name__, ": " + text if text else ""))


class FleetOutcome:
    """What a converge did (or would do, in check mode), in the order of the input.

    ``failures`` holds the error of each item that did not converge, by its
    place in the input; ``released`` the errors that the caller ruled do not
    fail the task (a member being stopped that ended 'failed' and so no longer
    counts). The maps of the result are keyed by hostname, or ``hostname (id)``
    where two items' containers share a hostname.
    """

    def __init__(
        self,
        steps: Sequence[Step],
        records: List[Optional[Record]],
        actions: List[str],
        failures: Dict[int, HzelError],
    ) -> None:
        self.steps = steps
        self.records = records
        self.actions = actions
        self.failures = failures
        self.released: Dict[int, HzelError] = {}

    @property
    def changed(self) -> bool:
        return any(action != "none" for action in self.actions)

    def name(self, index: int) -> str:
        record = self.records[index] or self.steps[index].current
        return record["hostname"] if record else self.steps[index].desired.name

    def names(self) -> List[str]:
        """One distinct name per item, in the order of the input."""
        ids = []
        for index, step in enumerate(self.steps):
            record = self.records[index] or step.current or {}
            ids.append(record.get("id") or step.desired.id or step.desired.label or None)
        return unique_names([self.name(index) for index in range(len(self.steps))], ids)

    @property
    def action_map(self) -> Dict[str, str]:
        return dict(zip(self.names(), self.actions))

    @property
    def failure_map(self) -> Dict[str, str]:
        names = self.names()
        return {names[index]: error.message for index, error in sorted(self.failures.items())}

    @property
    def released_map(self) -> Dict[str, str]:
        names = self.names()
        return {names[index]: error.message for index, error in sorted(self.released.items())}

    @property
    def failure_details(self) -> Dict[str, Dict[str, Any]]:
        """The API's error code and HTTP status of each failure that had them."""
        names = self.names()
        details = {}
        for index, error in sorted(self.failures.items()):
            found = error_details(error)
            if found:
                details[names[index]] = found
        return details

    def diffs(self) -> List[Dict[str, Any]]:
        """One before/after per container that changes, headed by its hostname: readable for a fleet of 100."""
        names = self.names()
        return [
            {
                "before_header": names[index],
                "after_header": names[index],
                "before": diff_view(step.current),
                "after": diff_view(self.records[index]),
            }
            for index, step in enumerate(self.steps)
            if self.actions[index] != "none"
        ]

    def failure_message(self) -> str:
        if len(self.steps) == 1:
            return next(iter(self.failures.values())).message
        listed = ["%s: %s" % (name, message) for name, message in list(self.failure_map.items())[:LISTED_PROBLEMS]]
        more = len(self.failures) - LISTED_PROBLEMS
        return "%d of %d containers did not converge%s: %s%s" % (
            len(self.failures),
            len(self.steps),
            " (the others did)" if len(self.failures) < len(self.steps) else "",
            "; ".join(listed),
            "; and %d more (see 'failures')" % more if more > 0 else "",
        )


def error_details(error: HzelError) -> Dict[str, Any]:
    """``error_code`` and ``status`` of an error, those that it has."""
    return {key: value for key, value in (("error_code", error.code), ("status", error.status)) if value is not None}


class FleetFailed(HzelError):
    """Some items did not converge; ``outcome`` reports everything that was done.

    Its ``status`` and ``code`` are those of the failures when they all share
    them (always so for a fleet of one), and None otherwise.
    """

    def __init__(self, outcome: FleetOutcome) -> None:
        shared = {(error.status, error.code) for error in outcome.failures.values()}
        status, code = shared.pop() if len(shared) == 1 else (None, None)
        super().__init__(outcome.failure_message(), status, code)
        self.outcome = outcome


def run_pool(
    work: Callable[[Any], Any], items: Sequence[Any], workers: int, scrub: Callable[[str], str] = str
) -> List[Tuple[Any, Optional[HzelError]]]:
    """Run work(item) for every item, at most ``workers`` at once; (result, error) in item order.

    Any exception of one item's work is that item's error, so that one odd
    reply cannot lose what the others did; one that is not an HzelError is
    named by its class, its text passed through ``scrub``.
    """

    def guarded(item: Any) -> Tuple[Any, Optional[HzelError]]:
        try:
            return work(item), None
        except HzelError as exc:
            return None, exc
        except Exception as exc:
            return None, unexpected_failure(exc, scrub)

    if not items:
        return []
    if len(items) == 1 or workers <= 1:
        return [guarded(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(guarded, items))


class FleetExecutor:
    def __init__(
        self,
        api: ContainersAPI,
        settings: FleetSettings,
        check_mode: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.settings = settings
        self.check_mode = check_mode
        self._sleep = sleep
        self._clock = clock

    def converge(self, desired: Sequence[DesiredContainer]) -> FleetOutcome:
        """Read once, plan (all or nothing), then apply; raises PlanRefused or FleetFailed."""
        return self._plan_and_apply(desired, self.read_current(desired))

    def converge_derived(
        self,
        derive: Callable[[List[Record]], Sequence[DesiredContainer]],
        release: Optional[Callable[[FleetOutcome, Callable[[str], Record]], Iterable[int]]] = None,
    ) -> FleetOutcome:
        """As converge, for desired items that depend on what exists (a count group).

        ``derive`` turns the one list read into the desired items; the plan is made from the same records, so an
        unchanged group costs one request too. Whatever ``derive`` raises is raised before any change.
        ``release(outcome, get)`` names the failures that do not fail the task (``get`` reads one container by id);
        they move from ``failures`` to ``released``.
        """
        current = self.api.list()
        return self._plan_and_apply(derive(current), current, release)

    def _plan_and_apply(
        self,
        desired: Sequence[DesiredContainer],
        current: Sequence[Record],
        release: Optional[Callable[[FleetOutcome, Callable[[str], Record]], Iterable[int]]] = None,
    ) -> FleetOutcome:
        steps = make_plan(desired, current, self.settings)
        if self.check_mode:
            return FleetOutcome(steps, [step.predicted for step in steps], [step.action for step in steps], {})
        outcome = self.apply(steps)
        if outcome.failures and release is not None:
            for index in list(release(outcome, self.api.get)):
                if index in outcome.failures:
                    outcome.released[index] = outcome.failures.pop(index)
        if outcome.failures:
            raise FleetFailed(outcome)
        return outcome

    def read_current(self, desired: Sequence[DesiredContainer]) -> List[Record]:
        if reads_by_id(desired):
            try:
                return [self.api.get(desired[0].id or "")]
            except HzelNotFound:
                return []
        return self.api.list()

    def apply(self, steps: Sequence[Step]) -> FleetOutcome:
        steps = list(steps)
        records: List[Optional[Record]] = [step.current for step in steps]
        actions = ["none"] * len(steps)
        failures: Dict[int, HzelError] = {}

        def first_request(index: int) -> Record:
            step = steps[index]
            if step.request == "create":
                spec = dict(step.desired.spec, hostname=step.desired.hostname)
                return self.api.create(spec)
            return self._power(step.request, records[index])

        for index, (record, error) in self._each([i for i, s in enumerate(steps) if s.request], first_request):
            if error is not None:
                failures[index] = error
                continue
            # Only a record that another run created is adopted; a create that found its own
            # earlier attempt (a lost reply) is still this run's create.
            if record.pop("adopted", False):
                try:
                    steps[index] = adopt(steps[index], record, self.settings)
                except HzelError as exc:
                    failures[index] = HzelError("created meanwhile by another run, and " + exc.message)
                    records[index] = record
                    continue
            else:
                actions[index] = steps[index].action
            records[index] = record

        settling = [
            i
            for i, step in enumerate(steps)
            if i not in failures and step.settle and (records[i] or {}).get("state") == "provisioning"
        ]
        self._wait_together(settling, records, failures)

        def follow_up(index: int) -> Record:
            return self._power(steps[index].after_settle, records[index])

        after = [i for i, step in enumerate(steps) if step.after_settle and i not in failures]
        for index, (record, error) in self._each(after, follow_up):
            if error is not None:
                failures[index] = error
                continue
            records[index] = record
            if actions[index] == "none":
                actions[index] = steps[index].after_settle or "none"
        return FleetOutcome(steps, records, actions, failures)

    def _each(
        self, indexes: List[int], work: Callable[[int], Any]
    ) -> Iterable[Tuple[int, Tuple[Any, Optional[HzelError]]]]:
        return zip(indexes, run_pool(work, indexes, self.settings.parallelism, self.api.scrub))

    def _power(self, action: Optional[str], record: Optional[Record]) -> Record:
        if action not in ("start", "stop", "restart") or record is None:
            raise HzelError("internal error: no power action %r for %r" % (action, record))
        return getattr(self.api, action)(record["id"])

    def _wait_together(
        self, pending_indexes: List[int], records: List[Optional[Record]], failures: Dict[int, HzelError]
    ) -> None:
        """Poll while containers are provisioning: one request per round for the whole fleet.

        The wait starts once the last create or power request has been answered,
        however long sending them took, and polls at least once before it gives
        up: a container is never declared still provisioning unseen.
        """
        pending = {(records[i] or {})["id"]: i for i in pending_indexes}
        timeout = self.settings.wait_timeout
        started = self._clock()
        delay = POLL_FIRST
        while pending:
            self._sleep(max(0.0, min(delay, timeout - (self._clock() - started))))
            try:
                seen = self._poll(list(pending))
            except Exception as exc:
                error = exc if isinstance(exc, HzelError) else unexpected_failure(exc, self.api.scrub)
                for index in pending.values():
                    failures[index] = HzelError(
                        "while waiting for provisioning: " + error.message, error.status, error.code
                    )
                return
            for container_id, index in list(pending.items()):
                record = seen.get(container_id)
                if record is None:
                    failures[index] = HzelError(
                        "Container %s disappeared while provisioning" % describe(records[index] or {})
                    )
                    del pending[container_id]
                    continue
                records[index] = record
                if record["state"] == "provisioning":
                    continue
                del pending[container_id]
                if record["state"] == "failed":
                    failures[index] = HzelError(
                        "Container %s ended in state 'failed' while provisioning" % describe(record)
                    )
            elapsed = self._clock() - started
            if pending and elapsed >= timeout:
                for index in pending.values():
                    failures[index] = HzelError(
                        "Container %s was still '%s' after waiting %ss (wait_timeout)"
                        % (describe(records[index] or {}), (records[index] or {}).get("state"), plain_number(timeout))
                    )
                return
            cap = POLL_SHORT_CAP if elapsed < POLL_SHORT_PERIOD else POLL_LONG_CAP
            delay = min(delay * POLL_FACTOR, cap)

    def _poll(self, container_ids: List[str]) -> Dict[str, Record]:
        # One container: one small GET. More: one list read, whatever their number.
        if len(container_ids) == 1:
            try:
                return {container_ids[0]: self.api.get(container_ids[0])}
            except HzelNotFound:
                return {}
        return {record["id"]: record for record in self.api.list()}


def _metrics_reader(api: ContainersAPI) -> Callable[[Record], Any]:
    def read(record: Record) -> Any:
        return api.metrics(record["id"])

    return read


def fetch_metrics(api: ContainersAPI, records: Sequence[Record], workers: int) -> Tuple[List[Record], Dict[str, str]]:
    """Every record with its ``metrics``, fetched concurrently; a failure loses one host's metrics, not the rest.

    Returns the records (``metrics`` is None where the fetch failed) and the
    failures by hostname (``hostname (id)`` where a hostname repeats).
    """
    records = list(records)
    results = run_pool(_metrics_reader(api), records, workers, api.scrub)
    return with_answers(records, [(metrics, None if error is None else error.message) for metrics, error in results])


def with_answers(
    records: Sequence[Record], answers: Sequence[Tuple[Any, Optional[str]]]
) -> Tuple[List[Record], Dict[str, str]]:
    """Each record with its ``metrics`` from its (metrics, error message) answer; the messages by unique name."""
    names = unique_names([record["hostname"] for record in records], [record["id"] for record in records])
    with_metrics = []
    failures = {}
    for name, record, (metrics, message) in zip(names, records, answers):
        with_metrics.append(dict(record, metrics=metrics))
        if message is not None:
            failures[name] = message
    return with_metrics, failures


# Reading metrics costs the reading process a few hundred microseconds of Python per reply, whatever the API's
# latency, and more with more threads in one process (they contend for its interpreter lock): with many requests
# in flight one process is bound by one core. A fan-out this large is therefore spread over processes (forked, so
# that each starts at once with the client already built): one per CPU and at least one per THREADS_PER_PROCESS
# requests in flight, at most PROCESSES_AUTO_MAX when the number is left to the machine, and at least
# READS_PER_PROCESS reads per process, since a process costs a few milliseconds to start.
READS_PER_PROCESS = 1000
THREADS_PER_PROCESS = 32
PROCESSES_AUTO_MAX = 8
PROCESSES_MAX = 16


def spread_over(reads: int, workers: int, processes: Optional[int] = None, cpus: Optional[int] = None) -> int:
    """How many processes read ``reads`` metrics with ``workers`` requests in flight: ``processes`` when given,
    else, on Linux, one per CPU (at most 4) or one per THREADS_PER_PROCESS workers, whichever is more, at most
    PROCESSES_AUTO_MAX (elsewhere 1); never more than one per READS_PER_PROCESS reads nor more than ``workers``
    (each process has one request in flight at least); 1 where fork is not available."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if processes is None:
        # Python calls fork unsafe on macOS (system libraries may crash the child), so the machine's default
        # is one process there; metrics_processes given says otherwise.
        if not sys.platform.startswith("linux"):
            return 1
        cpus = cpus if cpus is not None else (os.cpu_count() or 1)
        processes = min(PROCESSES_AUTO_MAX, max(min(cpus, 4), -(-workers // THREADS_PER_PROCESS)))
    return max(1, min(processes, reads // READS_PER_PROCESS, workers))


def shares_of(workers: int, count: int) -> List[int]:
    """``workers`` requests in flight split between ``count`` processes: shares that differ by one at most."""
    return [workers // count + (1 if index < workers % count else 0) for index in range(count)]


class _Orphaned(Exception):
    """The process that forked this one is gone: the reads left are not made."""


def _read_part(
    api: ContainersAPI, records: Sequence[Record], workers: int, send: Any, parent: int, others: Sequence[Any] = ()
) -> None:
    """In a forked process: the metrics of ``records``, sent back as (metrics, error message) pairs; never returns.

    The process ends with os._exit, so nothing of the parent's (atexit handlers, buffered output, locks that a
    thread of the parent held at the fork) is run or waited for, and nothing is printed: no traceback, no warning
    reaches the user's terminal. Ctrl-C and SIGTERM end it at once (their default action, unless the parent
    ignores them), and it stops reading when its parent is gone. ``others`` are the parent's ends of the pipes of
    the processes forked before this one: closed here, so that only the parent holds them. A process that cannot
    answer ends, and the parent reports its reads as failed.
    """
    status = 1
    try:
        for other in others:
            other.close()
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            number = getattr(signal, name, None)
            if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
                signal.signal(number, signal.SIG_DFL)
        sys.stdout = sys.stderr = open(os.devnull, "w", encoding="utf-8")

        def read(record: Record) -> Any:
            if os.getppid() != parent:
                raise _Orphaned()
            return api.metrics(record["id"])

        results = run_pool(read, records, workers, api.scrub)
        if os.getppid() != parent:
            raise _Orphaned()
        send.send([(metrics, None if error is None else error.message) for metrics, error in results])
        status = 0
    except BaseException:  # nothing may escape to multiprocessing, which would print it
        pass
    finally:
        try:
            send.close()
        finally:
            os._exit(status)


def _lost(exitcode: Optional[int]) -> str:
    why = "ended without an answer"
    if exitcode is not None and exitcode > 0:
        why += " (exit code %d)" % exitcode
    elif exitcode is not None and exitcode < 0:
        why += " (killed by signal %d)" % -exitcode
    return "the process that read this host's metrics %s" % why


def fetch_metrics_spread(
    apis: Sequence[ContainersAPI], records: Sequence[Record], workers: int
) -> Tuple[List[Record], Dict[str, str]]:
    """``fetch_metrics`` over one process per client in ``apis`` (forked; the first part too, so that this
    process only waits): records[i::n] go to the i-th, with ``shares_of(workers, n)[i]`` requests in flight.

    Each client must be new (its connections unused): a forked process never shares a connection with another.
    Same result as ``fetch_metrics``; the reads of a process that ends without an answer fail, each with the reason.
    A part whose process cannot be started (a process limit, no memory, a caller that may not fork) is read here.
    """
    records = list(records)
    count = min(len(apis), workers)
    if count <= 1 or len(records) < 2:
        return fetch_metrics(apis[0], records, workers)
    context = multiprocessing.get_context("fork")
    shares = shares_of(workers, count)
    parts = [list(range(index, len(records), count)) for index in range(count)]
    answers: List[Tuple[Any, Optional[str]]] = [(None, None)] * len(records)
    children: List[Tuple[Any, Any, List[int]]] = []
    here: List[Tuple[ContainersAPI, List[int], int]] = []
    try:
        for api, part, share in zip(apis, parts, shares):
            receive: Any = None
            send: Any = None
            try:
                receive, send = context.Pipe(duplex=False)
                others = [receiving for _child, receiving, _part in children]
                child = context.Process(
                    target=_read_part,
                    args=(api, [records[i] for i in part], share, send, os.getpid(), others),
                    daemon=True,
                )
                child.start()
            except (OSError, ValueError, AssertionError):
                for end in (receive, send):
                    if end is not None:
                        end.close()
                here.append((api, part, share))
                continue
            send.close()
            children.append((child, receive, part))
        for api, part, share in here:
            results = run_pool(_metrics_reader(api), [records[i] for i in part], share, api.scrub)
            for index, (metrics, error) in zip(part, results):
                answers[index] = (metrics, None if error is None else error.message)
        for child, receive, part in children:
            try:
                answered = receive.recv()
            except (EOFError, OSError):
                answered = None
            child.join()
            if not isinstance(answered, list) or len(answered) != len(part):
                answered = [(None, _lost(child.exitcode))] * len(part)
            for index, answer in zip(part, answered):
                answers[index] = answer
    finally:
        # Also on Ctrl-C or any error here: no process is left reading.
        for child, receive, _part in children:
            receive.close()
            if child.exitcode is None:
                child.terminate()
                child.join()
    return with_answers(records, answers)
