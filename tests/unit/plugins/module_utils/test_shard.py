# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import random
import zlib

import pytest

from ansible_collections.hzel.cloud.plugins.module_utils._options import InvalidParameters
from ansible_collections.hzel.cloud.plugins.module_utils._shard import Shard, parse_shard, shard_of


def test_the_rule_is_crc32_of_the_utf8_hostname_modulo_count():
    # Values any tool computes: crc32("web-1") = 0xbb8f8968.
    assert zlib.crc32(b"web-1") == 0xBB8F8968
    assert shard_of("web-1", 4) == 0xBB8F8968 % 4
    assert Shard(4, 0xBB8F8968 % 4).holds("web-1")
    assert not Shard(4, (0xBB8F8968 + 1) % 4).holds("web-1")


def test_every_hostname_is_in_exactly_one_shard_and_shards_are_balanced():
    hostnames = ["web-%d" % index for index in range(4000)]
    shards = [Shard(4, index) for index in range(4)]
    for hostname in hostnames:
        assert sum(shard.holds(hostname) for shard in shards) == 1
    sizes = [sum(shard.holds(hostname) for hostname in hostnames) for shard in shards]
    assert min(sizes) > 850 and max(sizes) < 1150, sizes


def test_adding_hosts_never_moves_an_existing_host():
    rng = random.Random(7)
    before = ["app-%d" % rng.randrange(10**6) for _number in range(500)]
    placed = {hostname: shard_of(hostname, 5) for hostname in before}
    after = before + ["app-%d" % rng.randrange(10**6) for _number in range(500)]
    assert {hostname: shard_of(hostname, 5) for hostname in after if hostname in placed} == placed


def test_a_value_that_is_no_hostname_is_in_no_shard():
    assert not any(Shard(1, 0).holds(value) for value in (None, 7, ["web-1"]))
    assert Shard(1, 0).holds("web-1")


def test_not_given_is_no_shard():
    assert parse_shard(None) is None
    assert parse_shard({"count": 3, "index": 2}) == Shard(3, 2)


@pytest.mark.parametrize(
    "value, message",
    [
        ({"count": 2, "index": 2}, "shard.index must be from 0 to 1 (it counts from 0, below count 2), got 2"),
        ({"count": 0, "index": 0}, "shard.count must be from 1 to 1000, got 0"),
        ({"count": -1, "index": 0}, "shard.count must be from 1 to 1000, got -1"),
        ({"count": 2, "index": -1}, "shard.index must be from 0 to 1"),
        ({"count": 2}, "shard needs index"),
        ({}, "shard needs count and index"),
        ({"count": 2, "index": 0, "indx": 1}, "unknown key 'indx' (did you mean 'index'?)"),
        ({"count": "2", "index": 0}, "shard.count must be a whole number, got '2'"),
        ({"count": 2, "index": True}, "shard.index must be a whole number, got True"),
        ({"count": 2.0, "index": 0}, "shard.count must be a whole number"),
        ("2/0", "shard must be a dictionary such as {count: 4, index: 0}"),
        ({"count": 10**400, "index": 0}, "shard.count must be from 1 to 1000"),
    ],
)
def test_bad_shards_are_one_clear_message(value, message):
    with pytest.raises(InvalidParameters) as failure:
        parse_shard(value)
    assert message in str(failure.value)
