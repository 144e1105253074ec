# Shards of a fleet: which containers one of several inventories or event sources takes.
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""A fleet split into shards by hostname, for several controllers or rulebook activations over one fleet.

A container belongs to shard ``k`` of ``N`` when the CRC-32 of its UTF-8 hostname, modulo ``N``, is ``k``:
a rule any tool can compute (``zlib.crc32(hostname.encode()) % N`` in Python, ``crc32`` elsewhere). A
container's shard depends on its hostname and ``N`` only, so adding containers never moves an existing one to
another shard.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from ansible_collections.hzel.cloud.plugins.module_utils._options import InvalidParameters, unknown_keys

SHARD_COUNT_MAX = 1000
SHARD_KEYS = ("count", "index")


@dataclass(frozen=True)
class Shard:
    count: int
    index: int

    def holds(self, hostname: Any) -> bool:
        """Whether the container of this hostname belongs to this shard (a hostname that is not a string: no)."""
        if not isinstance(hostname, str):
            return False
        return zlib.crc32(hostname.encode("utf-8")) % self.count == self.index


def shard_of(hostname: str, count: int) -> int:
    """The index of the shard of ``count`` that a hostname belongs to."""
    return zlib.crc32(hostname.encode("utf-8")) % count


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_shard(value: Any, name: str = "shard") -> Optional[Shard]:
    """``{count: N, index: k}`` checked (1 <= N <= 1000, 0 <= k < N, no other key), or None when not given."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidParameters("%s must be a dictionary such as {count: 4, index: 0}, got %s" % (name, _shown(value)))
    unknown = unknown_keys(value, SHARD_KEYS)
    if unknown:
        raise InvalidParameters("%s has unknown key %s; it takes count and index" % (name, ", ".join(unknown)))
    missing = [key for key in SHARD_KEYS if key not in value]
    if missing:
        raise InvalidParameters("%s needs %s, for example {count: 4, index: 0}" % (name, " and ".join(missing)))
    count, index = value["count"], value["index"]
    for key, number in (("count", count), ("index", index)):
        if isinstance(number, bool) or not isinstance(number, int):
            raise InvalidParameters("%s.%s must be a whole number, got %s" % (name, key, _shown(number)))
    if not 1 <= count <= SHARD_COUNT_MAX:
        raise InvalidParameters("%s.count must be from 1 to %d, got %s" % (name, SHARD_COUNT_MAX, _shown(count)))
    if not 0 <= index < count:
        raise InvalidParameters(
            "%s.index must be from 0 to %d (it counts from 0, below count %d), got %s"
            % (name, count - 1, count, _shown(index))
        )
    return Shard(count, index)
