# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hzel.cloud.plugins.filter.usage import FilterModule, usage

METRICS = {
    "cpu_percent": 12.44,
    "memory_used_mb": 256,
    "memory_total_mb": 1024,
    "disk_used_gb": 4.5,
    "disk_total_gb": 18,
}


def test_an_info_record_gives_three_rounded_percentages():
    assert usage({"hostname": "web-1", "metrics": METRICS}) == {
        "cpu_percent": 12.4,
        "memory_percent": 25.0,
        "disk_percent": 25.0,
    }


def test_inventory_host_variables_are_read_with_their_prefix():
    hostvars = {"hzel_" + name: value for name, value in METRICS.items()}
    assert usage(hostvars) == usage({"metrics": METRICS})
    custom = {"c_" + name: value for name, value in METRICS.items()}
    assert usage(custom, prefix="c_")["memory_percent"] == 25.0


def test_a_bare_metrics_dict_is_accepted():
    assert usage(METRICS)["disk_percent"] == 25.0


def test_metrics_that_could_not_be_read_give_nulls_not_an_error():
    nulls = {"cpu_percent": None, "memory_percent": None, "disk_percent": None}
    assert usage({"hostname": "web-1", "metrics": None}) == nulls
    assert usage({"hzel_hostname": "web-1"}) == nulls


@pytest.mark.parametrize(
    "broken",
    [
        {"memory_total_mb": 0},
        {"memory_used_mb": None},
        {"memory_used_mb": "256"},
        {"memory_used_mb": float("nan")},
        {"memory_total_mb": float("inf")},
        {"memory_used_mb": True},
    ],
)
def test_a_reading_that_cannot_make_a_percentage_is_null(broken):
    result = usage({"metrics": dict(METRICS, **broken)})
    assert result["memory_percent"] is None
    assert result["disk_percent"] == 25.0


def test_something_that_is_not_a_record_is_one_clear_error():
    with pytest.raises(AnsibleFilterError, match="expects a container record"):
        usage(["web-1"])
    with pytest.raises(AnsibleFilterError, match="metrics are str"):
        usage({"metrics": "high"})


def test_the_filter_is_registered_by_its_name():
    assert FilterModule().filters()["usage"] is usage


def _host_vars_view(variables):
    """What hostvars[inventory_hostname] is in a play: core's read-only view of one host's variables."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.hostvars import HostVarsVars

    try:
        return HostVarsVars(variables, DataLoader(), "web-1")
    except TypeError:  # ansible-core before 2.19 takes no host name
        return HostVarsVars(variables, DataLoader())


def test_the_host_variables_a_play_sees_are_read_as_any_mapping():
    view = _host_vars_view({"inventory_hostname": "web-1", **{"hzel_" + k: v for k, v in METRICS.items()}})
    assert not isinstance(view, dict)
    assert usage(view) == usage({"metrics": METRICS})


def test_metrics_in_any_mapping_are_read():
    view = _host_vars_view(dict(METRICS))
    assert usage({"metrics": view}) == usage({"metrics": METRICS})
