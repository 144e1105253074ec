# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every YAML example of the role's README and the collection's README is valid YAML, as a reader copies it."""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[4]
READMES = ("roles/hzel_fleet/README.md", "README.md")
BLOCK = re.compile(r"^```ya?ml\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks(name):
    return [match.group(1) for match in BLOCK.finditer((ROOT / name).read_text(encoding="utf-8"))]


@pytest.mark.parametrize("name", READMES)
def test_every_yaml_example_of_the_readme_loads(name):
    examples = blocks(name)
    assert examples
    broken = {}
    for index, example in enumerate(examples):
        try:
            yaml.safe_load(example)
        except yaml.YAMLError as exc:
            broken[index] = str(exc).splitlines()[0]
    assert broken == {}


def test_the_role_readme_scale_example_gives_the_pattern_as_a_string():
    plays = [yaml.safe_load(example) for example in blocks("roles/hzel_fleet/README.md")]
    scales = [
        role["vars"]["hzel_fleet_scale"]
        for play in plays
        if isinstance(play, list)
        for entry in play
        for role in entry.get("roles", [])
        if "hzel_fleet_scale" in role.get("vars", {})
    ]
    assert scales and scales[0]["hostname_pattern"] == "web-{index}" and scales[0]["count"] == 3
