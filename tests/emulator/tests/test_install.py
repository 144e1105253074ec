# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulator installs on its own (pip install ./tests/emulator) and gives the hzel-emulator command."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig

from conftest import EMULATOR_DIR


def _run(*command, **kwargs):
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=env, **kwargs)


def test_pip_installs_the_emulator_with_the_hzel_emulator_command(tmp_path):
    # A copy: pip builds in the source folder, which stays clean.
    source = tmp_path / "emulator"
    shutil.copytree(EMULATOR_DIR, source, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    venv = tmp_path / "venv"
    made = _run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    # Without the network: pip, flit_core (the build backend) and the emulator's dependencies come from this
    # virtualenv's pins.
    site = _run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    with open(os.path.join(site, "pinned.pth"), "w", encoding="utf-8") as handle:
        handle.write(sysconfig.get_paths()["purelib"] + "\n")
    installed = _run(
        str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--no-build-isolation", str(source)
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    command = venv / "bin" / "hzel-emulator"
    helped = _run(str(command), "--help", cwd=str(tmp_path))
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: hzel-emulator "), helped.stdout
    # The same flags as python -m hzel_emulator, run from the source folder.
    module = _run(sys.executable, "-m", "hzel_emulator", "--help", cwd=EMULATOR_DIR)
    assert module.returncode == 0, module.stderr
    helped, module = helped.stdout, module.stdout
    same = [text.replace("hzel-emulator", "PROG").replace("hzel_emulator", "PROG") for text in (helped, module)]
    assert same[0] == same[1]
    assert {"--port", "--db", "--ssh-port", "--announce"} <= set(re.findall(r"--[a-z-]+", helped))
    # It is the installed copy that ran, not the source folder.
    where = _run(str(python), "-c", "import hzel_emulator; print(hzel_emulator.__file__)", cwd=str(tmp_path))
    assert where.stdout.strip().startswith(str(venv)), where
