# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan: pure, no HTTP. Every state pair, and every reason to refuse a fleet before any change."""

from __future__ import annotations

import pytest

from ansible_collections.hzel.cloud.plugins.module_utils._options import InvalidParameters
from ansible_collections.hzel.cloud.plugins.module_utils._plan import (
    FleetSettings,
    PlanRefused,
    desired_fleet,
    make_plan,
    settings_from,
)
from ansible_collections.hzel.cloud.tests.unit.plugins.module_utils.fake_api import record, uuid

WAIT = FleetSettings(wait=True)
NO_WAIT = FleetSettings(wait=False)


def plan(items, current=(), settings=WAIT, state="present"):
    return make_plan(desired_fleet(items, state), list(current), settings)


# current state, desired state -> action, immediate request, request after provisioning, predicted state
STATE_PAIRS = [
    (None, "present", "create", "create", None, "running"),
    (None, "running", "create", "create", None, "running"),
    (None, "stopped", "create", "create", "stop", "stopped"),
    (None, "restarted", "create", "create", None, "running"),
    ("provisioning", "present", "none", None, None, "running"),
    ("provisioning", "running", "none", None, None, "running"),
    ("provisioning", "stopped", "stop", None, "stop", "stopped"),
    ("provisioning", "restarted", "restart", None, "restart", "running"),
    ("running", "present", "none", None, None, "running"),
    ("running", "running", "none", None, None, "running"),
    ("running", "stopped", "stop", "stop", None, "stopped"),
    ("running", "restarted", "restart", "restart", None, "running"),
    ("stopped", "present", "none", None, None, "stopped"),
    ("stopped", "running", "start", "start", None, "running"),
    ("stopped", "stopped", "none", None, None, "stopped"),
    ("stopped", "restarted", "restart", "restart", None, "running"),
]


@pytest.mark.parametrize("current, wanted, action, immediate, after, predicted", STATE_PAIRS)
def test_every_state_pair(current, wanted, action, immediate, after, predicted):
    existing = [record("web-1", state=current)] if current else []
    (step,) = plan([{"hostname": "web-1", "state": wanted}], existing)
    assert (step.action, step.request, step.after_settle, step.predicted["state"]) == (
        action,
        immediate,
        after,
        predicted,
    )
    assert step.settle == (current in (None, "provisioning"))


def test_without_wait_a_new_container_is_predicted_provisioning_and_not_waited_for():
    (step,) = plan([{"hostname": "web-1"}], settings=NO_WAIT)
    assert step.predicted["state"] == "provisioning" and step.settle is False


def test_a_new_container_is_predicted_with_the_api_defaults_and_no_id():
    (step,) = plan([{"hostname": "web-1", "memory_mb": 1024}])
    assert step.predicted == {
        "id": None,
        "user_id": None,
        "created_at": None,
        "hostname": "web-1",
        "state": "running",
        "cpu_cores": 1,
        "memory_mb": 1024,
        "disk_gb": 18,
    }


def test_items_without_a_state_take_the_fleet_default():
    steps = plan(
        [{"hostname": "web-1"}, {"hostname": "web-2", "state": "present"}],
        [record("web-1", state="stopped"), record("web-2", state="stopped")],
        state="running",
    )
    assert [step.action for step in steps] == ["start", "none"]


def test_drift_failed_and_unknown_ids_are_refused_together_naming_every_item_and_field():
    current = [record("web-1", cpu_cores=2, memory_mb=1024), record("db-1", state="failed"), record("ok-1")]
    with pytest.raises(PlanRefused) as refusal:
        plan(
            [
                {"hostname": "web-1", "cpu_cores": 4, "memory_mb": 2048},
                {"hostname": "ok-1", "state": "stopped"},
                {"hostname": "db-1"},
                {"id": uuid(424242)},
            ],
            current,
        )
    message = refusal.value.message
    assert "3 items cannot be converged, so nothing was changed" in message
    assert (
        "cpu_cores is 2, the parameters ask for 4" in message
        and "memory_mb is 1024, the parameters ask for 2048" in message
    )
    assert "db-1" in message and "'failed'" in message
    assert uuid(424242) in message and "not found" in message
    assert set(refusal.value.problems) == {"containers[0]", "containers[2]", "containers[3]"}


def test_a_spec_that_matches_is_not_drift():
    (step,) = plan([{"hostname": "web-1", "cpu_cores": 2}], [record("web-1", cpu_cores=2, memory_mb=4096)])
    assert step.action == "none"


def test_a_hostname_that_two_visible_containers_hold_is_refused_naming_both_ids():
    first, second = record("web-1"), dict(record("web-1"), id=uuid(7))
    with pytest.raises(PlanRefused) as refusal:
        plan([{"hostname": "web-1"}], [first, second])
    assert first["id"] in refusal.value.message and second["id"] in refusal.value.message


def test_an_id_whose_hostname_differs_is_refused():
    with pytest.raises(PlanRefused) as refusal:
        plan([{"id": record("web-1")["id"], "hostname": "web-2"}], [record("web-1")])
    assert "cannot rename" in refusal.value.message


def test_one_container_named_by_id_and_by_hostname_is_refused():
    with pytest.raises(PlanRefused) as refusal:
        plan([{"id": record("web-1")["id"]}, {"hostname": "web-1"}], [record("web-1")])
    assert "containers[1]" in refusal.value.message and "containers[0] names too" in refusal.value.message


@pytest.mark.parametrize(
    "item, says",
    [
        ({"hostname": "Web_1"}, "hostname must be a DNS label"),
        ({"hostname": "web\n"}, "hostname must be a DNS label"),
        ({"hostname": "-web"}, "hostname must be a DNS label"),
        ({"hostname": "a" * 64}, "hostname must be a DNS label"),
        ({"id": "."}, "id must be a container UUID"),
        ({"id": "../x"}, "id must be a container UUID"),
        ({"hostname": "web-1", "disk_gb": 40}, "disk_gb must be between 18 and 32"),
        ({"hostname": "web-1", "cpu_cores": 0}, "cpu_cores must be a positive integer"),
        ({"hostname": "web-1", "memory_mb": True}, "memory_mb must be a positive integer"),
        ({"hostname": "web-1", "state": "absent"}, "state must be one of present, running, stopped, restarted"),
        ({"cpu_cores": 1}, "one of hostname or id is required"),
        ({"hostname": "web-1", "cpu_core": 2}, "unknown key 'cpu_core' (did you mean 'cpu_cores'?)"),
        ("web-1", "must be a dictionary"),
    ],
)
def test_bad_items_are_refused_before_any_request(item, says):
    with pytest.raises(PlanRefused) as refusal:
        desired_fleet([{"hostname": "ok-1"}, item])
    assert says in refusal.value.message and "containers[1]" in refusal.value.message


def test_every_bad_item_is_named_at_once():
    with pytest.raises(PlanRefused) as refusal:
        desired_fleet([{"hostname": "Bad"}, {"hostname": "ok-1"}, {"hostname": "ok-1"}, {"id": "nope"}])
    assert set(refusal.value.problems) == {"containers[0]", "containers[2]", "containers[3]"}
    assert "already named by containers[1]" in refusal.value.message


def test_a_fleet_of_one_speaks_without_list_positions():
    with pytest.raises(PlanRefused) as refusal:
        desired_fleet([{"hostname": "web-1", "disk_gb": 40}], labelled=False)
    assert (
        refusal.value.message.startswith("disk_gb must be between 18 and 32")
        and "containers[" not in refusal.value.message
    )


def test_a_long_refusal_lists_ten_and_counts_the_rest():
    with pytest.raises(PlanRefused) as refusal:
        desired_fleet([{"hostname": "Bad%d" % n} for n in range(25)])
    assert "and 15 more (see 'problems')" in refusal.value.message and len(refusal.value.problems) == 25


@pytest.mark.parametrize(
    "options, says",
    [
        (dict(wait_timeout=float("nan")), "wait_timeout must be a finite number"),
        (dict(wait_timeout=float("inf")), "wait_timeout must be a finite number"),
        (dict(wait_timeout=0), "wait_timeout must be greater than 0"),
        (dict(wait_timeout=1e9), "wait_timeout must be greater than 0 and at most 86400"),
        (dict(parallelism=0), "parallelism must be at least 1 and at most 64"),
        (dict(parallelism=1000), "parallelism must be at least 1 and at most 64"),
    ],
)
def test_fleet_settings_out_of_range_are_refused(options, says):
    with pytest.raises(InvalidParameters) as refusal:
        settings_from(**options)
    assert says in refusal.value.message


@pytest.mark.parametrize(
    "item, title",
    [
        ({"hostname": "web-1", "disk_gb": 99}, "containers[1] (web-1)"),
        ({"id": uuid(5), "disk_gb": 99}, "containers[1] (%s)" % uuid(5)),
        ({"disk_gb": 99}, "containers[1]"),
    ],
)
def test_a_bad_item_is_named_once_by_its_place_and_its_hostname_or_id(item, title):
    with pytest.raises(PlanRefused) as refusal:
        desired_fleet([{"hostname": "ok-1"}, item])
    message = refusal.value.message
    assert message.startswith(title + ": ") and message.count("containers[1]") == 1
    assert "disk_gb must be between 18 and 32 (got 99)" in message
    assert refusal.value.problems["containers[1]"].endswith("disk_gb must be between 18 and 32 (got 99)")


def test_a_fleet_refusal_of_several_items_names_each_once_with_its_hostname():
    with pytest.raises(PlanRefused) as refusal:
        desired_fleet([{"hostname": "web-1", "disk_gb": 99}, {"hostname": "web-2", "cpu_cores": 0}])
    message = refusal.value.message
    assert "containers[0] (web-1): disk_gb must be between" in message
    assert "containers[1] (web-2): cpu_cores must be a positive integer" in message
    assert message.count("containers[0]") == 1 and message.count("containers[1]") == 1
    assert refusal.value.problems == {
        "containers[0]": "disk_gb must be between 18 and 32 (got 99)",
        "containers[1]": "cpu_cores must be a positive integer (got 0)",
    }


def test_a_refused_plan_names_each_item_by_its_place_and_hostname():
    with pytest.raises(PlanRefused) as refusal:
        plan([{"hostname": "ok-1"}, {"hostname": "web-1", "cpu_cores": 4}], [record("web-1", cpu_cores=2)])
    assert refusal.value.message.startswith("containers[1] (web-1): container web-1 (")
    assert list(refusal.value.problems) == ["containers[1]"]
