# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hzel_container_info with hostname_pattern, as Ansible runs it, over mocked HTTP."""

from __future__ import annotations

import json

import pytest
import responses

from ansible_collections.hzel.cloud.plugins.modules import hzel_container_info
from ansible_collections.hzel.cloud.tests.unit.plugins.module_utils.fake_api import LIST, RECORD
from ansible_collections.hzel.cloud.tests.unit.plugins.modules.runner import TOKEN, run_module


def member(hostname, state="running", number=1):
    return dict(RECORD, id="01942cf7-0000-7000-8000-%012d" % number, hostname=hostname, state=state)


FLEET = [
    member("web-10", number=1),
    member("web-2", "provisioning", number=2),
    member("web-3", "stopped", number=3),
    member("web-1", "failed", number=4),
    member("web-01", number=5),
    member("webx-1", number=6),
    member("db-1", number=7),
]


@responses.activate
def test_a_pattern_returns_only_the_members_and_the_group_by_state(capsys):
    responses.get(LIST, json={"data": FLEET})
    result = run_module(hzel_container_info, {"hostname_pattern": "web-{index}"}, capsys)
    assert result["changed"] is False and len(responses.calls) == 1
    assert [record["hostname"] for record in result["containers"]] == ["web-1", "web-2", "web-3", "web-10"]
    assert result["group"] == {
        "hostname_pattern": "web-{index}",
        "members": ["web-1", "web-2", "web-3", "web-10"],
        "active": ["web-2", "web-10"],
        "stopped": ["web-3"],
        "failed": ["web-1"],
        "count": 2,
    }


@responses.activate
def test_a_state_filter_narrows_the_containers_but_not_the_group(capsys):
    responses.get(LIST, json={"data": FLEET})
    result = run_module(hzel_container_info, {"hostname_pattern": "web-{index}", "state": ["running"]}, capsys)
    assert [record["hostname"] for record in result["containers"]] == ["web-10"]
    assert result["group"]["members"] == ["web-1", "web-2", "web-3", "web-10"] and result["group"]["count"] == 2


@responses.activate
def test_without_a_pattern_there_is_no_group(capsys):
    responses.get(LIST, json={"data": FLEET})
    result = run_module(hzel_container_info, {}, capsys)
    assert "group" not in result and len(result["containers"]) == len(FLEET)


@pytest.mark.parametrize(
    "args, says",
    [
        ({"hostname_pattern": "web-{index}-{index}"}, "exactly one placeholder"),
        ({"hostname_pattern": "{index}-web"}, "must start with a literal prefix"),
        ({"hostname_pattern": "web-{index}", "index_start": -1}, "index_start must be at least 0"),
        ({"hostname_pattern": "web-{index}", "hostname": "web-1"}, "mutually exclusive"),
        ({"hostname_pattern": "web-{index}", "id": RECORD["id"]}, "mutually exclusive"),
    ],
)
def test_a_bad_pattern_is_refused_before_any_request(capsys, args, says):
    with responses.RequestsMock() as mock:
        result = run_module(hzel_container_info, args, capsys)
        assert not mock.calls
    assert result["failed"] is True and says in result["msg"]
    assert TOKEN not in json.dumps(result)
