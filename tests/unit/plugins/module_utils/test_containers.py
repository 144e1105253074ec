# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The containers endpoints: every reply checked for shape, creates that adopt, ids that stay ids."""

from __future__ import annotations

import pytest

from ansible_collections.hzel.cloud.plugins.module_utils._containers import (
    AmbiguousHostname,
    ContainersAPI,
    HostnameHeldElsewhere,
)
from ansible_collections.hzel.cloud.plugins.module_utils._transport import (
    HzelBadRequest,
    HzelError,
    HzelTransport,
    HzelUnexpectedReply,
)
from ansible_collections.hzel.cloud.tests.unit.plugins.module_utils.fake_api import API, ID, LIST, RECORD


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
