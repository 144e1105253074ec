# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The command that docs/awx/credential_type.yml gives to load it prints the two mappings as JSON."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import yaml

FILE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "docs", "awx", "credential_type.yml")


def test_the_documented_command_turns_each_mapping_into_json(tmp_path):
    with open(FILE, encoding="utf-8") as handle:
        text = handle.read()
    function = re.search(r"^#   (part\(\) \{.*\})$", text, re.MULTILINE).group(1)
    definition = yaml.safe_load(text)
    for part in ("inputs", "injectors"):
        script = "%s; part %s" % (function.replace("python3 ", sys.executable + " ", 1), part)
        printed = subprocess.run(
            ["bash", "-c", script], cwd=os.path.dirname(FILE), capture_output=True, text=True, check=True
        ).stdout
        assert json.loads(printed) == definition[part]
