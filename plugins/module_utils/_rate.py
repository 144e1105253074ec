# The 429 rule of the hzel API client: how long one request waits, and when the whole pool slows down.
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""What a transport does when the API answers 429 Too Many Requests.

The rule:

1. A request answered 429 waits by itself for the ``Retry-After`` the API sent
   (seconds or an HTTP date; a backoff when there is none), never less than
   ``RETRY_AFTER_FLOOR`` and never more than ``RETRY_AFTER_MAX``, then is sent
   again. A 429 means nothing was done, so it spends no ``api_retries``.
2. A request stops waiting for the rate limit after ``RATE_LIMIT_PATIENCE``
   seconds of wall time since its first 429, or after ``RATE_LIMIT_MAX_WAITS``
   429s, whichever comes first.
3. The other requests of the pool go on: a 429 now and then (a flaky proxy, a
   short burst) costs what it costs the one request. Only when the 429s show a
   real limit does the whole pool hold until that ``Retry-After`` has passed.
   The sign of a real limit is a streak: answers 429 in a row across the pool,
   with no other answer between them, and a streak longer than chance makes
   likely. A real limit answers every request 429 once it is reached, so its
   streaks are as long as the requests in flight; random 429s (a share ``p`` of
   the answers) make a streak of ``k`` with the odds ``p ** k``. The share is
   read from the last ``HISTORY`` answers before the streak (with a prior of
   ``PRIOR_429`` in ``PRIOR_ANSWERS``, so that a few first answers do not
   decide it), and the streak that counts is the shortest whose odds by chance
   are below ``CHANCE`` (at least ``LIMIT_SIGNS``): 4 when 429s are rare, 6 at
   20% random 429s, where four in a row happen by chance once in about 800
   answers. The pool then sends at the pace the API let through in the last
   ``Retry-After`` (a little below it, plus room for the random share of 429s
   among the requests sent), a pace that grows by ``PACE_GROWTH`` a second,
   is cut by ``PACE_CUT`` at the next such streak (once a second at most), is
   eased off by ``PACE_TRIM`` when the 429s at the pace are more than the
   random share makes likely (and then grows no further than just below where
   it was), and ends after ``PACE_FOR`` seconds without a streak. So a real
   limit is approached without a storm of 429s; random 429s seldom make a
   streak that counts, never cut a pace, and a pace they start by chance ends
   by itself.

The client's own limit (``api_rate_limit``) and the budget the API states in
its replies (``read_budget``) are kept by the same gate: see ``RateGate``.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from email.utils import parsedate_to_datetime
from itertools import repeat
from typing import Any, Callable, Deque, Optional, Tuple

# HTTP states Retry-After in whole seconds: an answer of 0, 0.001 or a date in the
# past is read as "soon", which is one second, not a loop of requests.
RETRY_AFTER_FLOOR = 1.0
RETRY_AFTER_MAX = 60.0
RATE_LIMIT_PATIENCE = 120.0
RATE_LIMIT_MAX_WAITS = 100
LIMIT_SIGNS = 4
# The longest streak asked for: a pool seldom has more requests in flight, and a share of 429s this high is a
# limit the requests' own waits already follow.
LIMIT_SIGNS_MAX = 16
CHANCE = 1e-4
HISTORY = 256
PRIOR_429 = 1
PRIOR_ANSWERS = 20
# A pace makes room for the random 429s among the requests it sends, up to this share.
RANDOM_SHARE_MAX = 0.5
PACE_GROWTH = 0.02
PACE_CUT = 0.9
PACE_CUT_EVERY = 1.0
# A pace that brings more 429s than the random share would (by two standard deviations and one, among at least
# 50 answers) eases off a little.
PACE_TRIM = 0.97
PACED_ANSWERS = 200
PACE_FOR = 30.0


# api_rate_limit: requests per second for the whole client, at most this many; a burst of one second's worth
# (at least 1, at most RATE_LIMIT_BURST_MAX) may leave at once.
RATE_LIMIT_MAX = 10000.0
RATE_LIMIT_BURST_MAX = 10


def burst_for(per_second: float) -> int:
    """How many requests may leave at once under a limit of ``per_second``: one second's worth, 1 to 10."""
    return int(min(RATE_LIMIT_BURST_MAX, max(1.0, math.floor(per_second))))


# The API's own budget, where its replies state it: the IETF draft's RateLimit-* headers, or the common
# X-RateLimit-* ones. Remaining requests until Reset; a Reset larger than RESET_MAX is a UNIX time. The values come
# from the network: anything out of these bounds, negative, fractional counts or garbage is ignored.
BUDGET_HEADERS = (
    ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"),
    ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"),
)
BUDGET_MAX = 10**9
RESET_MAX = 86400.0
# A budget whose reset is further away than this is not waited for: its requests go, and a 429 follows rule 2.
BUDGET_WAIT_MAX = RATE_LIMIT_PATIENCE
# "100" or "100, 100;w=60" (the draft's quota policies follow the first value).
_BUDGET_COUNT = re.compile(r"[ \t]*(\d{1,10})[ \t]*(?:[,;].{0,200})?")
_BUDGET_SECONDS = re.compile(r"[ \t]*(\d{1,12}(?:\.\d{1,9})?)[ \t]*(?:[,;].{0,200})?")


def _budget_count(value: Any) -> Optional[int]:
    match = _BUDGET_COUNT.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    count = int(match.group(1))
    return count if count <= BUDGET_MAX else None


def _budget_reset(value: Any, wall_clock: Callable[[], float]) -> Optional[float]:
    match = _BUDGET_SECONDS.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    seconds = float(match.group(1))
    if seconds > RESET_MAX:
        # Too large to be a delay: a UNIX time (GitHub, GitLab and Hetzner send these). One in the past is now.
        seconds -= wall_clock()
        if seconds < -RESET_MAX:
            return None
        seconds = max(0.0, seconds)
    return seconds if seconds <= RESET_MAX else None


def read_budget(headers: Any, wall_clock: Callable[[], float] = time.time) -> Optional[Tuple[int, float]]:
    """(requests remaining, seconds until the budget resets) from a reply's headers; None when absent or invalid."""
    for limit_name, remaining_name, reset_name in BUDGET_HEADERS:
        remaining_text = headers.get(remaining_name)
        if remaining_text is None:
            continue
        remaining = _budget_count(remaining_text)
        reset = _budget_reset(headers.get(reset_name), wall_clock)
        limit_text = headers.get(limit_name)
        limit = _budget_count(limit_text) if limit_text is not None else None
        if remaining is None or reset is None or (limit_text is not None and (limit is None or remaining > limit)):
            return None
        return remaining, reset
    return None


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds to wait from a Retry-After header, within the floor and the cap; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if not math.isfinite(seconds):
        return None
    return pause_for(seconds)


def pause_for(seconds: float) -> float:
    """The wait after one 429: at least the floor, at most the cap."""
    return min(max(seconds, RETRY_AFTER_FLOOR), RETRY_AFTER_MAX)


class RateGate:
    """What every request of one transport passes before it is sent: a hold, a pace once a limit is known, and
    the client's own limit (``api_rate_limit``).

    While held, no request is sent. Once paced, requests leave one at a time at
    the pace (``pace`` per second), which grows by ``PACE_GROWTH`` per second
    (once slowed, up to a little below the pace it was slowed from), is cut by
    ``PACE_CUT`` (once a second at most) and ends ``PACE_FOR`` seconds after it
    was last set or cut.

    The API's budget (``budget_from``, from its RateLimit headers): what is
    left of it, less the requests in flight (which it may not have counted
    yet), is spent one request at a time; when nothing is left, requests wait
    for its reset instead of being answered 429.

    The client's own limit is a token bucket (kept as the time the bucket is
    next empty, GCRA): ``burst_for(rate_limit)`` requests may leave at once,
    then one every ``1 / rate_limit`` seconds, so that any window of ``W``
    seconds holds at most ``W * rate_limit + burst`` requests of the client.
    """

    def __init__(
        self, sleep: Callable[[float], None], clock: Callable[[], float], rate_limit: Optional[float] = None
    ) -> None:
        self._lock = threading.Lock()
        self.rate_limit = rate_limit
        self._interval = 1.0 / rate_limit if rate_limit else 0.0
        self._tolerance = (burst_for(rate_limit) - 1) * self._interval if rate_limit else 0.0
        # When the bucket would be empty if no request came meanwhile (the "theoretical arrival time" of GCRA).
        self._bucket_empty_at = 0.0
        # Requests sent and not yet answered; what the API's budget has left for requests not yet sent, and when
        # it resets (0.0: no budget known).
        self.in_flight = 0
        self._budget = 0
        self._budget_reset_at = 0.0
        self.budget_waits = 0
        # Whether any reply stated the API's budget (a client that splits its work keeps it in one process then).
        self.budget_stated = False
        self._not_before = 0.0
        self._sleep = sleep
        self._clock = clock
        self.pace = 0.0
        self._paced_at = 0.0
        # When the pace was last set or cut by a sign of the limit (a trim does not renew it).
        self._renewed_at = 0.0
        # No growth above the pace at which the last sign came (a little below it): the limit is about there.
        self._ceiling = math.inf
        self._next_slot = 0.0

    def request_done(self) -> None:
        """The request that passed ``wait`` last is answered (or given up): it is no longer in flight."""
        with self._lock:
            self.in_flight -= 1

    def budget_from(self, remaining: int, reset: float) -> None:
        """A reply (still in flight) stated the API's budget: ``remaining`` requests for ``reset`` seconds."""
        with self._lock:
            self.budget_stated = True
            if reset > BUDGET_WAIT_MAX:
                self._budget_reset_at = 0.0
                return
            now = self._clock()
            # The other requests in flight may not be counted in it yet.
            budget = max(0, remaining - max(0, self.in_flight - 1))
            reset_at = now + reset
            if self._budget_reset_at and now < self._budget_reset_at:
                # Replies overtake each other: until a known budget resets, the lowest word stands. A reset is
                # stated in whole seconds, rounded up: the earliest is the nearest to the truth.
                budget = min(budget, self._budget)
                reset_at = min(reset_at, self._budget_reset_at)
            self._budget = budget
            self._budget_reset_at = reset_at

    def _spend_budget(self) -> float:
        """Count this request in flight, taking it from the API's budget (waiting for its reset when none is left).

        Returns the seconds slept. Both under one lock: a reply read meanwhile counts this request as in flight.
        """
        slept = 0.0
        while True:
            with self._lock:
                now = self._clock()
                if not self._budget_reset_at or now >= self._budget_reset_at:
                    # Past its reset the budget is unknown until the next reply states it.
                    self._budget_reset_at = 0.0
                    self.in_flight += 1
                    return slept
                if self._budget > 0:
                    self._budget -= 1
                    self.in_flight += 1
                    return slept
                self.budget_waits += 1
                remaining = self._budget_reset_at - now
            self._sleep(remaining)
            slept += remaining

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)

    def pace_at(self, per_second: float) -> None:
        with self._lock:
            self.pace = per_second
            self._paced_at = self._renewed_at = self._clock()
            self._ceiling = math.inf

    def slow_down(self, factor: float = PACE_CUT) -> None:
        """Another sign of the limit while paced: a slower pace (a streak from one overshoot is cut once)."""
        with self._lock:
            now = self._clock()
            if self.pace and now >= self._not_before and now - self._paced_at >= PACE_CUT_EVERY:
                current = self._current_pace(now)
                self.pace = current * factor
                self._ceiling = current * math.sqrt(factor)
                self._paced_at = now
                if factor <= PACE_CUT:
                    self._renewed_at = now

    def _current_pace(self, now: float) -> float:
        return min(self._ceiling, self.pace * (1.0 + PACE_GROWTH * max(0.0, now - self._paced_at)))

    def wait(self) -> float:
        """Sleep until the gate is open, this request's turn at the pace and in the client's bucket, and room
        in the API's budget; then count the request in flight until ``request_done``.

        Returns the seconds slept.
        """
        slept = 0.0
        # Read without the lock: a float is read whole, and an open gate costs nothing.
        while self._not_before > 0.0:
            remaining = self._not_before - self._clock()
            if remaining <= 0:
                break
            self._sleep(remaining)
            slept += remaining
        if self.pace:
            with self._lock:
                now = turn = self._clock()
                if now - self._renewed_at > PACE_FOR:
                    self.pace = 0.0
                else:
                    turn = max(now, self._next_slot)
                    self._next_slot = turn + 1.0 / self._current_pace(now)
            if turn > now:
                self._sleep(turn - now)
                slept += turn - now
        if self._interval:
            slept += self._draw()
        # Last, so that the budget is not taken long before the request leaves.
        return slept + self._spend_budget()

    def _draw(self) -> float:
        """Take this request's token from the client's bucket, sleeping until there is one; the seconds slept."""
        with self._lock:
            now = self._clock()
            empty_at = max(self._bucket_empty_at, now)
            turn = max(now, empty_at - self._tolerance)
            self._bucket_empty_at = empty_at + self._interval
        if turn > now:
            self._sleep(turn - now)
            return turn - now
        return 0.0


def random_share(limited: int, answers: int) -> float:
    """The share of 429s that comes at random, read from ``limited`` 429s among ``answers`` before a streak."""
    return (limited + PRIOR_429) / float(answers + PRIOR_ANSWERS)


def signs_needed(share: float) -> int:
    """The streak of 429s that shows a real limit when ``share`` of the answers are 429 at random (see rule 3)."""
    if share >= 1.0:
        return LIMIT_SIGNS_MAX
    return min(LIMIT_SIGNS_MAX, max(LIMIT_SIGNS, int(math.ceil(math.log(CHANCE) / math.log(share)))))


class RateRule:
    """Rule 3 above: tells a real limit from random 429s, then holds and paces the gate."""

    def __init__(self, gate: RateGate, clock: Callable[[], float]) -> None:
        self.gate = gate
        self._clock = clock
        self._lock = threading.Lock()
        # 429s in a row across the pool; any other answer ends the streak.
        self._streak = 0
        # The last answers before the current streak, True for a 429 (appending is atomic under the GIL).
        self._history: Deque[bool] = deque(maxlen=HISTORY)
        # When the last answers that were not 429 came.
        self._answered_at: Deque[float] = deque(maxlen=4096)
        self.limited = 0
        self.holds = 0
        # The answers and 429s since the pace was last set or slowed, and the random share of 429s when it was set.
        self._paced_answers = 0
        self._paced_limited = 0
        self._paced_share = 0.0

    def answered(self) -> None:
        if self._streak:
            with self._lock:
                self._end_streak()
        if self.gate.pace:
            self._paced_answers += 1
        self._history.append(False)
        self._answered_at.append(self._clock())

    def _end_streak(self) -> None:
        self._history.extend(repeat(True, self._streak))
        self._streak = 0

    def limited_for(self, delay: float) -> bool:
        """Note one 429 whose request waits ``delay``; True when it held the whole pool."""
        now = self._clock()
        with self._lock:
            self.limited += 1
            self._streak += 1
            share = 0.0
            sign = False
            if self._streak >= LIMIT_SIGNS:
                share = random_share(sum(self._history), len(self._history))
                sign = self._streak >= signs_needed(share)
            if sign:
                self._end_streak()
            hold = sign and not self.gate.pace
            trim = False
            if hold:
                self.holds += 1
                self._paced_share = share
            elif not sign and self.gate.pace:
                # 429s that keep coming at the pace, more than the random ones: the pace is a little too fast.
                self._paced_limited += 1
                answers = self._paced_answers + self._paced_limited
                if answers > PACED_ANSWERS:
                    # The last answers weigh most: a pace too fast a while ago is not too fast now.
                    self._paced_answers //= 2
                    self._paced_limited //= 2
                expected = self._paced_share * answers
                trim = (
                    answers >= PACED_ANSWERS // 4
                    and self._paced_limited > expected + 2.0 * math.sqrt(expected * (1.0 - self._paced_share)) + 1.0
                )
            if hold or sign or trim:
                self._paced_answers = self._paced_limited = 0
        if trim:
            self.gate.slow_down(PACE_TRIM)
        if hold:
            # What the API let through in the last Retry-After is about its pace; start a little below it. The
            # pace counts every request sent, and the random 429s among them are sent again: a pace of the
            # admitted ones alone would slow the pool below what the API lets through.
            admitted = sum(1 for at in list(self._answered_at) if at > now - delay)
            self.gate.hold(delay)
            self.gate.pace_at(max(1.0, PACE_CUT * admitted / delay / (1.0 - min(share, RANDOM_SHARE_MAX))))
        elif sign:
            self.gate.slow_down()
        return hold
