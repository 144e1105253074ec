# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The usage filter: a container's metrics as percentages (documentation in usage.yml)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.hzel.cloud.plugins.module_utils._containers import METRICS_FIELDS


def _number(value):
    """A finite number, or None for anything else (a missing, null or off-spec reading)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def _percent(used, total):
    used, total = _number(used), _number(total)
    if used is None or total is None or total <= 0:
        return None
    return round(100.0 * used / total, 1)


def _metrics_of(record, prefix):
    """The five metrics readings of an info-module record, of inventory host variables, or of a metrics dict.

    Any mapping will do: hostvars[inventory_hostname] is a read-only view of the host's variables, not a dict.
    """
    if not isinstance(record, Mapping):
        raise AnsibleFilterError(
            "hzel.cloud.usage expects a container record or a host's variables (a mapping), got %s"
            % type(record).__name__
        )
    if "metrics" in record:
        metrics = record["metrics"]
        if metrics is None:
            return {}
        if not isinstance(metrics, Mapping):
            raise AnsibleFilterError(
                "hzel.cloud.usage: the record's metrics are %s, not a mapping or null" % type(metrics).__name__
            )
        return metrics
    if any(prefix + field in record for field in METRICS_FIELDS):
        return {field: record.get(prefix + field) for field in METRICS_FIELDS}
    return record


def usage(record, prefix="hzel_"):
    if not isinstance(prefix, str):
        raise AnsibleFilterError("hzel.cloud.usage: prefix must be a string, got %s" % type(prefix).__name__)
    metrics = _metrics_of(record, prefix)
    cpu = _number(metrics.get("cpu_percent"))
    return {
        "cpu_percent": None if cpu is None else round(float(cpu), 1),
        "memory_percent": _percent(metrics.get("memory_used_mb"), metrics.get("memory_total_mb")),
        "disk_percent": _percent(metrics.get("disk_used_gb"), metrics.get("disk_total_gb")),
    }


class FilterModule:
    def filters(self):
        return {"usage": usage}
