# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The 429 rule: each request waits its own Retry-After; only a real limit holds and paces the pool."""

from __future__ import annotations

import collections
import concurrent.futures
import random

import pytest

from ansible_collections.hzel.cloud.plugins.module_utils._rate import (
    PACE_CUT,
    PACE_FOR,
    RATE_LIMIT_BURST_MAX,
    RETRY_AFTER_FLOOR,
    RETRY_AFTER_MAX,
    RateGate,
    RateRule,
    burst_for,
    parse_retry_after,
    read_budget,
)
from ansible_collections.hzel.cloud.tests.unit.plugins.module_utils.fake_api import FakeTime


@pytest.fixture
def time():
    return FakeTime(now=1000.0)


@pytest.fixture
def rule(time):
    return RateRule(RateGate(time.sleep, time.clock), time.clock)


@pytest.mark.parametrize(
    "header, seconds",
    [
        ("2", 2.0),
        ("0", RETRY_AFTER_FLOOR),
        ("0.001", RETRY_AFTER_FLOOR),
        ("-3", RETRY_AFTER_FLOOR),
        ("Wed, 21 Oct 2015 07:28:00 GMT", RETRY_AFTER_FLOOR),
        ("86400", RETRY_AFTER_MAX),
        ("nan", None),
        ("soon", None),
        (None, None),
    ],
)
def test_a_retry_after_is_read_within_the_floor_and_the_cap(header, seconds):
    assert parse_retry_after(header) == seconds


def test_random_429s_among_many_answers_leave_the_pool_alone(rule, time):
    for number in range(500):
        time.now += 0.01
        if number % 5 == 4:
            assert not rule.limited_for(1.0)
        else:
            rule.answered()
    assert rule.holds == 0 and rule.gate.pace == 0.0 and rule.gate.wait() == 0.0


def test_a_streak_of_429s_holds_the_pool_then_paces_it_at_what_the_api_let_through(rule, time):
    for _round in range(100):
        time.now += 0.005
        rule.answered()
    assert [rule.limited_for(1.0) for _round in range(4)] == [False, False, False, True]
    assert rule.gate.wait() == pytest.approx(1.0)
    # A little below the 100 a second it let through, with room for the few random 429s seen before.
    assert 100 * PACE_CUT <= rule.gate.pace < 100


def test_once_paced_the_requests_leave_one_at_a_time(time):
    gate = RateGate(time.sleep, time.clock)
    gate.pace_at(10.0)
    for _round in range(5):
        gate.wait()
    assert time.sleeps == pytest.approx([0.1] * 4, rel=0.01)


def test_a_streak_of_429s_from_paced_requests_slows_the_pace_once(rule, time):
    rule.gate.pace_at(50.0)
    time.now += 2.0
    paced = rule.gate.pace
    for _round in range(5):
        rule.limited_for(1.0)
    assert rule.holds == 0 and rule.gate.pace < paced and rule.gate.pace >= paced * PACE_CUT


def test_random_429s_while_paced_do_not_slow_the_pace(rule, time):
    rule.gate.pace_at(50.0)
    for _round in range(20):
        time.now += 0.1
        rule.limited_for(1.0)
        rule.answered()
    assert rule.gate.pace == 50.0


def test_the_pace_ends_when_no_streak_of_429s_renews_it(rule, time):
    rule.gate.pace_at(5.0)
    time.now += PACE_FOR + 1
    rule.gate.wait()
    assert rule.gate.pace == 0.0
    assert rule.gate.wait() == 0.0 and rule.gate.wait() == 0.0


# A pool against a server, in simulated time -----------------------------------------------------------------


def simulate(rule, time, answer, seconds, workers=8, latency=0.022, retry_after=1.0):
    """Workers send through the gate until ``seconds`` have passed; ``answer(now)`` is True when the server admits.

    Events run in time order on the fake clock; a gate that sleeps holds every worker, as a hold does. Returns
    the send times of the admitted requests and of the 429s.
    """
    ready = [(time.now, number) for number in range(workers)]
    admitted, refused = [], []
    end = time.now + seconds
    in_flight = []
    while True:
        ready.sort()
        in_flight.sort()
        if in_flight and (not ready or in_flight[0][0] <= ready[0][0]):
            at, number, ok = in_flight.pop(0)
            time.now = max(time.now, at)
            if ok:
                rule.answered()
                ready.append((time.now, number))
            else:
                rule.limited_for(retry_after)
                ready.append((time.now + retry_after, number))
            continue
        at, number = ready.pop(0)
        if at >= end:
            break
        time.now = max(time.now, at)
        rule.gate.wait()
        ok = answer(time.now)
        (admitted if ok else refused).append(time.now)
        in_flight.append((time.now + latency, number, ok))
    return admitted, refused


def random_faults(seed, share=0.2):
    draw = random.Random(seed).random
    return lambda now: draw() >= share


def sliding_limit(per_second, also_random=None):
    """A server that admits ``per_second`` requests in any second (and, with ``also_random``, refuses at random)."""
    admitted = collections.deque()

    def answer(now):
        while admitted and admitted[0] <= now - 1.0:
            admitted.popleft()
        if len(admitted) >= per_second or (also_random is not None and not also_random(now)):
            return False
        admitted.append(now)
        return True

    return answer


def test_random_20_percent_429s_seldom_hold_the_pool_and_never_for_long(time):
    # Ten runs of about 1,250 answers, 250 of them 429 at random: four 429s in a row come by chance about 1.6
    # times a run.
    holds = cuts = answers = 0
    for seed in range(10):
        rule = RateRule(RateGate(time.sleep, time.clock), time.clock)
        cut = rule.gate.slow_down

        def counted_cut(cut=cut):
            nonlocal cuts
            cuts += 1
            cut()

        rule.gate.slow_down = counted_cut
        admitted, refused = simulate(rule, time, random_faults(seed), seconds=40.0)
        holds += rule.holds
        answers += len(admitted) + len(refused)
    assert answers > 10000
    assert holds <= 2 and cuts == 0


@pytest.mark.parametrize("per_second, also_random", [(100, None), (20, 0.2)])
def test_a_real_limit_is_detected_and_then_respected(rule, time, per_second, also_random):
    faults = None if also_random is None else random_faults(7, also_random)
    admitted, refused = simulate(rule, time, sliding_limit(per_second, faults), seconds=30.0)
    assert rule.holds >= 1 and rule.gate.pace
    # Past the first seconds the pool uses most of the limit, with few 429s more than the random ones.
    late_refused = [at for at in refused if at > 1005.0]
    late_admitted = [at for at in admitted if at > 1005.0]
    assert len(late_admitted) >= 0.6 * per_second * 25
    assert len(late_refused) <= (0.1 + (also_random or 0.0)) * (len(late_refused) + len(late_admitted))


# api_rate_limit: the client's own budget --------------------------------------------------------------------


@pytest.mark.parametrize("per_second, burst", [(0.2, 1), (1, 1), (2.5, 2), (7, 7), (10, 10), (100, 10), (5000, 10)])
def test_the_burst_is_one_seconds_worth_of_requests_from_1_to_10(per_second, burst):
    assert burst_for(per_second) == burst <= max(per_second, RATE_LIMIT_BURST_MAX)


def windows_within(sent_at, seconds, most):
    """Whether every window of ``seconds`` holds at most ``most`` of the times ``sent_at`` (sorted)."""
    first = 0
    for last, at in enumerate(sent_at):
        while sent_at[first] <= at - seconds:
            first += 1
        if last - first + 1 > most:
            return False
    return True


@pytest.mark.parametrize("per_second", [0.5, 3.0, 50.0, 400.0])
def test_demand_above_the_client_limit_keeps_every_window_within_it_and_uses_it(time, per_second):
    gate = RateGate(time.sleep, time.clock, per_second)
    sent_at = []
    seconds = 60.0
    end = time.now + seconds
    while time.now < end:
        gate.wait()
        sent_at.append(time.now)
        # Requests come at once or a little apart, always more of them than the limit lets through.
        time.now += random.Random(len(sent_at)).choice([0.0, 0.0, 0.001, 0.5 / per_second])
    burst = burst_for(per_second)
    assert windows_within(sent_at, 10.0, 10 * per_second + burst)
    assert windows_within(sent_at, 1.0, per_second + burst)
    assert len(sent_at) >= 0.9 * per_second * seconds


def test_a_burst_leaves_at_once_then_the_requests_leave_at_the_limit(time):
    gate = RateGate(time.sleep, time.clock, 20.0)
    waits = [gate.wait() for _request in range(40)]
    assert waits[:RATE_LIMIT_BURST_MAX] == [0.0] * RATE_LIMIT_BURST_MAX
    assert time.sleeps == pytest.approx([0.05] * 30)


def test_without_a_client_limit_nothing_waits(time):
    gate = RateGate(time.sleep, time.clock)
    assert [gate.wait() for _request in range(1000)] == [0.0] * 1000 and not time.sleeps


def test_the_client_limit_holds_for_every_thread_of_the_pool():
    sent_at = []
    # The clock stands still: every thread's turn is counted from the same instant, whatever the threads do.
    gate = RateGate(lambda seconds: None, lambda: 0.0, 10.0)

    def send(_number):
        sent_at.append(gate.wait())

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, range(200)))
    sent_at.sort()
    # Ten at once, then one every 0.1 s, whichever thread sends.
    assert sent_at[:10] == [0.0] * 10
    assert [round(at, 6) for at in sent_at[10:]] == [round(0.1 * turn, 6) for turn in range(1, 191)]


# The API's own budget headers -------------------------------------------------------------------------------

NOW = 1_764_800_000.0


@pytest.mark.parametrize(
    "headers, budget",
    [
        ({"RateLimit-Limit": "100", "RateLimit-Remaining": "40", "RateLimit-Reset": "7"}, (40, 7.0)),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "0.5"}, (0, 0.5)),
        ({"RateLimit-Limit": "100, 100;w=60", "RateLimit-Remaining": "3", "RateLimit-Reset": "60"}, (3, 60.0)),
        ({"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": "3600"}, (4999, 3600.0)),
        # GitHub, GitLab and Hetzner: a UNIX time.
        ({"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "%d" % (NOW + 30)}, (12, 30.0)),
        ({"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "%d" % (NOW - 30)}, (12, 0.0)),
        # The IETF form wins over the common one.
        (
            {
                "RateLimit-Remaining": "1",
                "RateLimit-Reset": "2",
                "X-RateLimit-Remaining": "9",
                "X-RateLimit-Reset": "8",
            },
            (1, 2.0),
        ),
    ],
)
def test_the_budget_headers_are_read_in_both_forms(headers, budget):
    assert read_budget(headers, wall_clock=lambda: NOW) == budget


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"RateLimit-Limit": "100"},
        {"RateLimit-Remaining": "10"},
        {"RateLimit-Remaining": "-1", "RateLimit-Reset": "5"},
        {"RateLimit-Remaining": "10", "RateLimit-Reset": "-5"},
        {"RateLimit-Remaining": "nan", "RateLimit-Reset": "5"},
        {"RateLimit-Remaining": "10", "RateLimit-Reset": "NaN"},
        {"RateLimit-Remaining": "10", "RateLimit-Reset": "inf"},
        {"RateLimit-Remaining": "10", "RateLimit-Reset": "1e3"},
        {"RateLimit-Remaining": "2.5", "RateLimit-Reset": "5"},
        {"RateLimit-Remaining": "99999999999", "RateLimit-Reset": "5"},
        {"RateLimit-Remaining": "10", "RateLimit-Reset": "999999999999"},
        {"RateLimit-Remaining": "10", "RateLimit-Reset": "%d" % (NOW * 1000)},
        {"RateLimit-Remaining": "10", "RateLimit-Reset": "%d" % (NOW + 86400 * 30)},
        {"RateLimit-Remaining": "10", "RateLimit-Reset": "soon"},
        {"RateLimit-Remaining": "10", "RateLimit-Reset": "5" + " " * 10 + "x" * 5000},
        {"RateLimit-Limit": "5", "RateLimit-Remaining": "10", "RateLimit-Reset": "5"},
        {"RateLimit-Limit": "lots", "RateLimit-Remaining": "10", "RateLimit-Reset": "5"},
        {"X-RateLimit-Remaining": "", "X-RateLimit-Reset": ""},
    ],
)
def test_budget_headers_that_are_absent_negative_huge_or_garbage_are_ignored(headers):
    assert read_budget(headers, wall_clock=lambda: NOW) is None


def test_a_spent_budget_holds_the_requests_until_its_reset(time):
    gate = RateGate(time.sleep, time.clock)
    # The request whose reply states the budget.
    gate.wait()
    gate.budget_from(2, 5.0)
    gate.request_done()
    assert [gate.wait() for _request in range(3)] == [0.0, 0.0, pytest.approx(5.0)]
    # Past the reset the budget is unknown until a reply states it again.
    assert gate.wait() == 0.0 and gate.wait() == 0.0


def test_the_requests_in_flight_are_taken_from_the_budget_a_reply_states(time):
    gate = RateGate(time.sleep, time.clock)
    for _request in range(4):
        gate.wait()
    # This reply and three others in flight: of 5 left, 2 are for requests not sent yet.
    gate.budget_from(5, 10.0)
    assert [gate.wait() for _request in range(3)] == [0.0, 0.0, pytest.approx(10.0)]


def test_a_reply_that_overtakes_another_does_not_give_back_budget(time):
    gate = RateGate(time.sleep, time.clock)
    gate.budget_from(3, 10.0)
    # Counted by the API before the first, answered after it (its reset rounded up to the next second).
    gate.budget_from(8, 11.0)
    assert [gate.wait() for _request in range(4)] == [0.0, 0.0, 0.0, pytest.approx(10.0)]


def test_a_budget_that_resets_after_longer_than_the_patience_is_not_waited_for(time):
    gate = RateGate(time.sleep, time.clock)
    gate.budget_from(0, 3600.0)
    assert gate.wait() == 0.0
