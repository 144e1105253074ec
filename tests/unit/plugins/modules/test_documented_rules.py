# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the documentation says of a rule is what the code does: the 429 rule, the role's connection wait."""

from __future__ import annotations

import pathlib
import re

import yaml

from ansible_collections.hzel.cloud.plugins.module_utils import _rate
from ansible_collections.hzel.cloud.plugins.modules import hzel_containers

ROOT = pathlib.Path(__file__).resolve().parents[4]
ROLE = ROOT / "roles" / "hzel_fleet"
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


def folded(text):
    return " ".join(text.split())


def test_hzel_containers_states_the_429_rule_of_the_client():
    description = folded(" ".join(yaml.safe_load(hzel_containers.DOCUMENTATION)["description"]))
    # A 429 holds one request; the whole pool holds only on a streak of them, and a request can give up.
    assert "holds the whole pool" not in description and "fails no item" not in description
    assert "only the request that got it wait" in description
    assert "at least %d second, at most %d" % (_rate.RETRY_AFTER_FLOOR, _rate.RETRY_AFTER_MAX) in description
    assert "%s answers 429 in a row" % NUMBER_WORDS[_rate.LIMIT_SIGNS] in description
    assert (
        "still answered 429 after %d seconds (or %d answers 429) fails its item only"
        % (_rate.RATE_LIMIT_PATIENCE, _rate.RATE_LIMIT_MAX_WAITS)
        in description
    )


def wait_task():
    tasks = yaml.safe_load((ROLE / "tasks" / "wait_for_connection.yml").read_text(encoding="utf-8"))
    return next(task for task in tasks if "ansible.builtin.wait_for_connection" in task)


def test_the_connection_wait_timeout_is_per_container_and_every_document_says_so():
    # The code: one wait_for_connection per container, in a loop, each with the whole timeout.
    task = wait_task()
    assert "loop" in task and "delegate_to" in task
    assert "hzel_fleet_wait_for_connection_timeout" in task["ansible.builtin.wait_for_connection"]["timeout"]
    # The documents: defaults, argument spec and README.
    defaults = (ROLE / "defaults" / "main.yml").read_text(encoding="utf-8")
    comment = re.search(r"((?:^#.*\n)+)hzel_fleet_wait_for_connection_timeout:", defaults, re.MULTILINE).group(1)
    assert "each container" in comment and "Seconds to wait, for the whole fleet" not in comment
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    option = specs["argument_specs"]["main"]["options"]["hzel_fleet_wait_for_connection_timeout"]
    assert "for each container" in folded(" ".join(option["description"]))
    readme = (ROLE / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `hzel_fleet_wait_for_connection_timeout`"))
    assert "for each of them" in row and "not for the whole fleet" in row
