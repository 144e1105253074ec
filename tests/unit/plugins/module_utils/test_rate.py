# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The 429 rule: each request waits its own Retry-After; only a real limit holds and paces the pool."""

from __future__ import annotations

import pytest

from ansible_collections.hzel.cloud.plugins.module_utils._rate import (
    PACE_CUT,
    PACE_FOR,
    RETRY_AFTER_FLOOR,
    RETRY_AFTER_MAX,
    RateGate,
    RateRule,
    parse_retry_after,
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
    assert rule.gate.pace == pytest.approx(100 * PACE_CUT)


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
