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
   real limit, ``LIMIT_SIGNS`` answers 429 in a row across the pool with no
   other answer between them, does the whole pool hold until that
   ``Retry-After`` has passed. It then sends at the pace the API let through in
   the last ``Retry-After`` (a little below it), a pace that grows by
   ``PACE_GROWTH`` a second and is cut by ``PACE_CUT`` at the next such streak
   (once a second at most), and that ends after ``PACE_FOR`` seconds without
   one. So a real limit is approached without a storm of 429s; random 429s
   seldom come four in a row, never cut a pace, and a pace they start by chance
   ends by itself.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from email.utils import parsedate_to_datetime
from typing import Callable, Deque, Optional

# HTTP states Retry-After in whole seconds: an answer of 0, 0.001 or a date in the
# past is read as "soon", which is one second, not a loop of requests.
RETRY_AFTER_FLOOR = 1.0
RETRY_AFTER_MAX = 60.0
RATE_LIMIT_PATIENCE = 120.0
RATE_LIMIT_MAX_WAITS = 100
LIMIT_SIGNS = 4
PACE_GROWTH = 0.03
PACE_CUT = 0.9
PACE_CUT_EVERY = 1.0
PACE_FOR = 30.0


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
    """What every request of one transport passes before it is sent: a hold, and a pace once a limit is known.

    While held, no request is sent. Once paced, requests leave one at a time at
    the pace (``pace`` per second), which grows by ``PACE_GROWTH`` per second,
    is cut by ``PACE_CUT`` (once a second at most) and ends ``PACE_FOR``
    seconds after it was last set or cut.
    """

    def __init__(self, sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._not_before = 0.0
        self._sleep = sleep
        self._clock = clock
        self.pace = 0.0
        self._paced_at = 0.0
        self._next_slot = 0.0

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)

    def pace_at(self, per_second: float) -> None:
        with self._lock:
            self.pace = per_second
            self._paced_at = self._clock()

    def slow_down(self) -> None:
        """Another sign of the limit while paced: a slower pace (a streak from one overshoot is cut once)."""
        with self._lock:
            now = self._clock()
            if self.pace and now >= self._not_before and now - self._paced_at >= PACE_CUT_EVERY:
                self.pace = self._current_pace(now) * PACE_CUT
                self._paced_at = now

    def _current_pace(self, now: float) -> float:
        return self.pace * (1.0 + PACE_GROWTH * max(0.0, now - self._paced_at))

    def wait(self) -> float:
        """Sleep until the gate is open (and this request's turn at the pace); returns the seconds slept."""
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
                now = self._clock()
                if now - self._paced_at > PACE_FOR:
                    self.pace = 0.0
                    return slept
                turn = max(now, self._next_slot)
                self._next_slot = turn + 1.0 / self._current_pace(now)
            if turn > now:
                self._sleep(turn - now)
                slept += turn - now
        return slept


class RateRule:
    """Rule 3 above: tells a real limit from random 429s, then holds and paces the gate."""

    def __init__(self, gate: RateGate, clock: Callable[[], float]) -> None:
        self.gate = gate
        self._clock = clock
        self._lock = threading.Lock()
        # 429s in a row across the pool; any other answer ends the streak (a plain store, no lock).
        self._streak = 0
        # When the last answers that were not 429 came (appending is atomic under the GIL).
        self._answered_at: Deque[float] = deque(maxlen=4096)
        self.limited = 0
        self.holds = 0

    def answered(self) -> None:
        self._streak = 0
        self._answered_at.append(self._clock())

    def limited_for(self, delay: float) -> bool:
        """Note one 429 whose request waits ``delay``; True when it held the whole pool."""
        now = self._clock()
        with self._lock:
            self.limited += 1
            self._streak += 1
            sign = self._streak >= LIMIT_SIGNS
            if sign:
                self._streak = 0
            hold = sign and not self.gate.pace
            if hold:
                self.holds += 1
        if hold:
            # What the API let through in the last Retry-After is about its pace; start a little below it.
            admitted = sum(1 for at in list(self._answered_at) if at > now - delay)
            self.gate.hold(delay)
            self.gate.pace_at(max(1.0, PACE_CUT * admitted / delay))
        elif sign:
            self.gate.slow_down()
        return hold
