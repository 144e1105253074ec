# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scripted load: metrics set by hostname pattern through /_emulator/metrics, so that load can be played."""

import fnmatch
import hashlib
import threading
import time

PERCENT_FIELDS = ("cpu_percent", "memory_percent", "disk_percent")
RULE_FIELDS = {"hostname_pattern", "jitter"} | set(PERCENT_FIELDS)
# With jitter, a set value moves by up to this many percentage points, every JITTER_SECONDS.
JITTER_POINTS = 2.0
JITTER_SECONDS = 10


def _percent(value):
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value <= 100


class LoadRule:
    def __init__(self, hostname_pattern, cpu_percent=None, memory_percent=None, disk_percent=None, jitter=False):
        if not isinstance(hostname_pattern, str) or not hostname_pattern:
            raise ValueError("hostname_pattern: must be a non-empty string (a shell-style pattern, such as web-*)")
        values = {"cpu_percent": cpu_percent, "memory_percent": memory_percent, "disk_percent": disk_percent}
        if all(value is None for value in values.values()):
            raise ValueError("give at least one of %s" % ", ".join(PERCENT_FIELDS))
        for name, value in values.items():
            if value is not None and not _percent(value):
                raise ValueError("%s: must be a number from 0 to 100" % name)
        if not isinstance(jitter, bool):
            raise ValueError("jitter: must be true or false")
        self.hostname_pattern = hostname_pattern
        self.values = values
        self.jitter = jitter

    def matches(self, hostname):
        return fnmatch.fnmatchcase(hostname, self.hostname_pattern)

    def as_dict(self):
        return dict(hostname_pattern=self.hostname_pattern, jitter=self.jitter, **self.values)

    def value(self, name, record, now):
        value = self.values[name]
        if value is None or not self.jitter:
            return value
        seed = hashlib.sha256(("%s:%s:%d" % (record["id"], name, int(now // JITTER_SECONDS))).encode()).digest()
        offset = (int.from_bytes(seed[:4], "big") / 0xFFFFFFFF * 2 - 1) * JITTER_POINTS
        return min(100.0, max(0.0, value + offset))


class Load:
    """The load rules: the last one set whose pattern matches a container's hostname applies to it.

    A rule applies to the containers that match it when their metrics are read, those created after it
    included, until it is replaced (a rule of the same pattern) or cleared.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []

    def set_rule(self, body):
        unknown = sorted(set(body) - RULE_FIELDS)
        if unknown:
            raise ValueError("unknown field(s): %s" % ", ".join(unknown))
        if "hostname_pattern" not in body:
            raise ValueError("hostname_pattern: field required")
        rule = LoadRule(**body)
        with self._lock:
            self._rules = [each for each in self._rules if each.hostname_pattern != rule.hostname_pattern]
            self._rules.append(rule)
        return rule

    def clear(self):
        with self._lock:
            self._rules = []

    def describe(self):
        with self._lock:
            return [rule.as_dict() for rule in self._rules]

    def apply(self, record, metrics, now=None):
        """The metrics with the set values of the rule that applies, if any (CPU and memory only while running)."""
        now = time.time() if now is None else now
        with self._lock:
            rule = next((each for each in reversed(self._rules) if each.matches(record["hostname"])), None)
        if rule is None:
            return metrics
        metrics = dict(metrics)
        running = record["state"] == "running"
        cpu = rule.value("cpu_percent", record, now)
        if cpu is not None and running:
            metrics["cpu_percent"] = round(float(cpu), 1)
        memory = rule.value("memory_percent", record, now)
        if memory is not None and running:
            metrics["memory_used_mb"] = int(round(record["memory_mb"] * memory / 100.0))
        disk = rule.value("disk_percent", record, now)
        if disk is not None and record["state"] in ("running", "stopped"):
            metrics["disk_used_gb"] = round(record["disk_gb"] * disk / 100.0, 1)
        return metrics
