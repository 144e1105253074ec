# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The containers endpoints: every reply checked for shape and size, creates that adopt, ids that stay ids."""

from __future__ import annotations

import pytest
import requests

from ansible_collections.hzel.cloud.plugins.module_utils._containers import (
    METRICS_FIELDS,
    METRICS_REPLY_MAX,
    RECORD_REPLY_MAX,
    AmbiguousHostname,
    ContainersAPI,
    HostnameHeldElsewhere,
)
from ansible_collections.hzel.cloud.plugins.module_utils._executor import FleetExecutor, fetch_metrics
from ansible_collections.hzel.cloud.plugins.module_utils._plan import FleetSettings, desired_fleet
from ansible_collections.hzel.cloud.plugins.module_utils._transport import (
    HzelBadRequest,
    HzelError,
    HzelTransport,
    HzelUnexpectedReply,
)
from ansible_collections.hzel.cloud.tests.unit.plugins.module_utils.fake_api import (
    API,
    ID,
    LIST,
    RECORD,
    FakeTime,
    uuid,
)


@pytest.fixture
def client():
    return ContainersAPI(HzelTransport(API, "unit-token", retries=0, sleep=lambda s: None))


def without(field):
    return {key: value for key, value in RECORD.items() if key != field}


@pytest.mark.parametrize(
    "data, problem",
    [
        (None, "data is null, not a list"),
        ({"id": ID}, "data is an object, not a list"),
        (["web-1", "web-2"], "data[0] is a string, not an object"),
        ([without("state")], "data[0] has no 'state'"),
        ([without("id")], "data[0] has no 'id'"),
        ([without("hostname")], "data[0] has no 'hostname'"),
        ([dict(RECORD, state="exploded")], "data[0].state is 'exploded'"),
        ([dict(RECORD, cpu_cores="2")], "data[0].cpu_cores is a string, not an integer"),
        ([dict(RECORD, memory_mb=True)], "data[0].memory_mb is a boolean, not an integer"),
        ([RECORD, dict(RECORD, hostname="")], "data[1].hostname is a string, not a non-empty string"),
        ([dict(RECORD, id=None)], "data[0].id is null"),
    ],
)
def test_a_list_that_does_not_match_the_reference_is_one_message_naming_the_endpoint(api, client, data, problem):
    api.get(LIST, json={"data": data})
    with pytest.raises(HzelUnexpectedReply) as failure:
        client.list()
    assert "GET %s" % LIST in failure.value.message and problem in failure.value.message
    assert "something unexpected" in failure.value.message


def test_records_keep_the_reference_fields_only(api, client):
    api.get(LIST, json={"data": [dict(RECORD, extra="{{ lookup('pipe', 'id') }}", _secret=1)]})
    assert client.list() == [RECORD]


@pytest.mark.parametrize("data", [None, [], {"cpu_percent": "high"}, {"cpu_percent": 1.0}])
def test_metrics_of_the_wrong_shape_are_refused(api, client, data):
    api.get(LIST + "/" + ID + "/metrics", json={"data": data})
    with pytest.raises(HzelUnexpectedReply) as failure:
        client.metrics(ID)
    assert "/metrics" in failure.value.message


@pytest.mark.parametrize("bad_id", [".", "..", "a/b", "../containers", "%2e", ID + "\n", ""])
def test_an_id_that_is_not_a_uuid_never_becomes_a_path(api, client, bad_id):
    for call in (client.get, client.start, client.metrics):
        with pytest.raises(HzelError) as failure:
            call(bad_id)
        assert "not a UUID" in failure.value.message
    assert not api.calls


def test_a_create_refused_because_a_concurrent_run_took_the_hostname_adopts_that_container(api, client):
    api.post(LIST, status=400, json={"error": {"code": "BAD_REQUEST", "message": "hostname: web-1 is already in use"}})
    api.get(LIST, json={"data": [dict(RECORD, state="provisioning")]})
    assert client.create({"hostname": "web-1"}) == dict(RECORD, state="provisioning", adopted=True)


@pytest.mark.parametrize(
    "answered, named",
    [
        (dict(RECORD, hostname="other-1"), "hostname other-1"),
        (dict(RECORD, cpu_cores=4), "cpu_cores 4"),
    ],
)
def test_a_create_answered_with_another_container_is_an_unexpected_reply(api, client, answered, named):
    api.post(LIST, status=201, json={"data": answered})
    with pytest.raises(HzelUnexpectedReply) as failure:
        client.create({"hostname": "web-1", "cpu_cores": RECORD["cpu_cores"]})
    assert "not the one asked for" in failure.value.message and named in failure.value.message
    assert "asked for cpu_cores %d, hostname web-1" % RECORD["cpu_cores"] in failure.value.message


def test_a_create_answered_with_the_container_asked_for_returns_it(api, client):
    api.post(LIST, status=201, json={"data": dict(RECORD, state="provisioning")})
    assert client.create({"hostname": "web-1", "memory_mb": RECORD["memory_mb"]}) == dict(RECORD, state="provisioning")


def test_a_hostname_held_by_another_account_says_so(api, client):
    api.post(LIST, status=400, json={"error": {"code": "BAD_REQUEST", "message": "hostname: web-1 is already in use"}})
    api.get(LIST, json={"data": []})
    with pytest.raises(HostnameHeldElsewhere) as failure:
        client.create({"hostname": "web-1"})
    assert "another account holds it" in failure.value.message


def test_another_bad_request_on_create_is_the_api_message(api, client):
    api.post(
        LIST, status=400, json={"error": {"code": "BAD_REQUEST", "message": "memory_mb: must be between 128 and 16384"}}
    )
    api.get(LIST, json={"data": []})
    with pytest.raises(HzelBadRequest) as failure:
        client.create({"hostname": "web-1", "memory_mb": 1})
    assert not isinstance(failure.value, HostnameHeldElsewhere) and "memory_mb" in failure.value.message


def test_a_hostname_that_two_visible_containers_hold_is_never_guessed(api, client):
    other = dict(RECORD, id="01942cf7-0000-7000-8000-000000000002")
    api.post(LIST, status=400, json={"error": {"code": "BAD_REQUEST", "message": "hostname: web-1 is already in use"}})
    api.get(LIST, json={"data": [RECORD, other]})
    with pytest.raises(AmbiguousHostname) as failure:
        client.create({"hostname": "web-1"})
    assert ID in failure.value.message and other["id"] in failure.value.message


TAKEN = {"error": {"code": "BAD_REQUEST", "message": "hostname: web-1 is already in use"}}


def test_a_create_that_outlived_the_timeout_and_landed_late_is_reported_as_this_runs_create(api):
    client = ContainersAPI(HzelTransport(API, "unit-token", retries=1, sleep=lambda s: None))
    api.post(LIST, body=requests.exceptions.ReadTimeout("read timed out"))
    api.get(LIST, json={"data": []})
    # The first attempt commits after the lookup: the second is refused because this run took the name.
    api.post(LIST, status=400, json=TAKEN)
    api.get(LIST, json={"data": [RECORD]})
    assert client.create({"hostname": "web-1"}) == RECORD


def test_a_fleet_whose_create_landed_late_reports_a_change_not_an_adoption(api):
    client = ContainersAPI(HzelTransport(API, "unit-token", retries=1, sleep=lambda s: None))
    api.get(LIST, json={"data": []})
    api.post(LIST, body=requests.exceptions.ReadTimeout("read timed out"))
    api.get(LIST, json={"data": []})
    api.post(LIST, status=400, json=TAKEN)
    api.get(LIST, json={"data": [RECORD]})
    time = FakeTime()
    executor = FleetExecutor(client, FleetSettings(), sleep=time.sleep, clock=time.clock)
    outcome = executor.converge(desired_fleet([{"hostname": "web-1"}], "running"))
    assert outcome.actions == ["create"] and outcome.changed


def test_a_refused_create_keeps_the_api_status_and_error_code(api, client):
    api.post(LIST, status=400, json={"error": {"code": "BAD_REQUEST", "message": "disk_gb: must be at most 32"}})
    api.get(LIST, json={"data": []})
    with pytest.raises(HzelBadRequest) as failure:
        client.create({"hostname": "web-1", "disk_gb": 40})
    assert failure.value.status == 400 and failure.value.code == "BAD_REQUEST"


def test_a_quota_refusal_is_the_api_message_not_a_hostname_held_elsewhere(api, client):
    api.post(
        LIST, status=400, json={"error": {"code": "BAD_REQUEST", "message": "you have already reached your limit"}}
    )
    api.get(LIST, json={"data": []})
    with pytest.raises(HzelBadRequest) as failure:
        client.create({"hostname": "web-1"})
    assert not isinstance(failure.value, HostnameHeldElsewhere)
    assert "you have already reached your limit" in failure.value.message and failure.value.code == "BAD_REQUEST"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "9" * 400, "-1e300"])
def test_metrics_that_are_not_finite_numbers_are_refused(api, client, number):
    metrics = ", ".join(
        '"%s": %s' % (field, number if index == 0 else "1") for index, field in enumerate(METRICS_FIELDS)
    )
    api.get(LIST + "/" + ID + "/metrics", body='{"data": {%s}}' % metrics, content_type="application/json")
    with pytest.raises(HzelUnexpectedReply) as failure:
        client.metrics(ID)
    assert "/metrics" in failure.value.message and "finite" in failure.value.message


def test_metrics_larger_than_a_metrics_reply_are_refused(api, client):
    padding = "x" * (METRICS_REPLY_MAX + 1)
    api.get(LIST + "/" + ID + "/metrics", json={"data": {"cpu_percent": 1.0, "note": padding}})
    with pytest.raises(HzelUnexpectedReply) as failure:
        client.metrics(ID)
    assert "larger than 16 KiB" in failure.value.message


def test_one_record_larger_than_a_record_is_refused(api, client):
    api.get(LIST + "/" + ID, json={"data": dict(RECORD, note="x" * RECORD_REPLY_MAX)})
    with pytest.raises(HzelUnexpectedReply) as failure:
        client.get(ID)
    assert "larger than 64 KiB" in failure.value.message


def test_a_reply_that_cannot_be_parsed_fails_one_hosts_metrics_and_not_the_others(api, client):
    records = [dict(RECORD, id=uuid(number), hostname="web-%d" % number) for number in (1, 2, 3)]
    good = {field: 1 for field in METRICS_FIELDS}
    for record in records:
        if record["hostname"] == "web-2":
            api.get(LIST + "/" + record["id"] + "/metrics", body="[" * 200_000, content_type="application/json")
        else:
            api.get(LIST + "/" + record["id"] + "/metrics", json={"data": good})
    with_metrics, failures = fetch_metrics(client, records, 3)
    assert list(failures) == ["web-2"] and "/metrics" in failures["web-2"]
    assert [record["metrics"] for record in with_metrics] == [good, None, good]


def test_a_token_echoed_into_a_record_field_never_reaches_a_message(api):
    token = "s3cret-token-value"
    client = ContainersAPI(HzelTransport(API, token, retries=0))
    # Placed where the shape check's cut would fall in the middle of the token.
    api.get(LIST, json={"data": [dict(RECORD, state="x" * 30 + token)]})
    with pytest.raises(HzelUnexpectedReply) as failure:
        client.list()
    assert token[:5] not in failure.value.message and "state" in failure.value.message


def test_ids_of_an_ambiguous_hostname_are_scrubbed(api):
    token = "s3cret-token-value"
    client = ContainersAPI(HzelTransport(API, token, retries=0))
    api.post(LIST, status=400, json=TAKEN)
    api.get(LIST, json={"data": [RECORD, dict(RECORD, id=token)]})
    with pytest.raises(AmbiguousHostname) as failure:
        client.create({"hostname": "web-1"})
    assert token not in failure.value.message and ID in failure.value.message
