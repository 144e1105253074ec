# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What `make serve` prints (the emulator's --announce): lines a user pastes, as README.md and the examples say."""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading

import pytest
import requests
from conftest import EMULATOR_DIR, _free_port

ROOT = os.path.dirname(os.path.dirname(EMULATOR_DIR))
README = os.path.join(ROOT, "README.md")
CONNECT_EXAMPLE = os.path.join(ROOT, "examples", "connect.hzel.yml")
LAST_LINE = "  export ANSIBLE_SSH_COMMON_ARGS="


def _announced(directory, *extra):
    """The emulator's announcement (up to its last export line), gateway.json, and the running process."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hzel_emulator", "--port", str(port), "--db", os.path.join(directory, "hzel.sqlite3")]
        + ["--ssh-port", "0", "--ssh-dir", os.path.join(directory, "ssh"), "--announce"]
        + list(extra),
        env=dict(os.environ, PYTHONPATH=EMULATOR_DIR),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines = []
    # A hang guard only: an emulator that never prints the last line is ended, and the test fails on what it printed.
    guard = threading.Timer(60, process.kill)
    guard.start()
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith(LAST_LINE):
                break
    finally:
        guard.cancel()
    with open(os.path.join(directory, "ssh", "gateway.json"), encoding="utf-8") as handle:
        info = json.load(handle)
    return process, "http://127.0.0.1:%d" % port, lines, info


@pytest.fixture
def announced(tmp_path):
    process, url, lines, info = _announced(str(tmp_path))
    yield url, lines, info
    process.terminate()
    process.wait(timeout=30)
    process.stdout.close()


def _pasted(lines):
    """The environment a shell has after the user pastes the printed export lines."""
    script = "\n".join(line.strip() for line in lines if line.strip().startswith("export ")) + "\nenv -0"
    output = subprocess.run(["bash", "-c", script], env={}, capture_output=True, check=True).stdout.decode()
    return dict(entry.split("=", 1) for entry in output.split("\0") if "=" in entry)


def test_the_printed_export_lines_point_the_collection_and_ansible_at_the_emulator(announced):
    url, lines, info = announced
    env = _pasted(lines)
    assert env["HZEL_API_URL"] == url
    assert env["HZEL_API_TOKEN"] == "hzel-demo-token"
    assert env["ANSIBLE_REMOTE_PORT"] == str(info["port"])
    assert env["ANSIBLE_PRIVATE_KEY_FILE"] == info["identity_file"]
    # Ansible splits ANSIBLE_SSH_COMMON_ARGS as a shell would.
    assert shlex.split(env["ANSIBLE_SSH_COMMON_ARGS"]) == [
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "UserKnownHostsFile=" + info["known_hosts"],
    ]


def test_the_exports_survive_a_directory_with_blanks_and_quotes(tmp_path):
    directory = tmp_path / "it's a dir"
    directory.mkdir()
    process, _url, lines, info = _announced(str(directory))
    try:
        env = _pasted(lines)
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()
    assert env["ANSIBLE_PRIVATE_KEY_FILE"] == info["identity_file"]
    # ssh reads an -o value as its configuration does: a path with blanks in double quotes.
    assert shlex.split(env["ANSIBLE_SSH_COMMON_ARGS"]) == [
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        'UserKnownHostsFile="%s"' % info["known_hosts"],
    ]


@pytest.mark.skipif(not os.path.exists(CONNECT_EXAMPLE), reason="outside the collection's repository")
def test_what_serve_prints_is_what_the_readme_and_the_connect_example_promise(announced):
    _url, lines, info = announced
    printed = {name for line in lines for name in re.findall(r"\b([A-Z][A-Z_]+)=", line) if "export" in line}
    with open(README, encoding="utf-8") as handle:
        readme = handle.read()
    with open(CONNECT_EXAMPLE, encoding="utf-8") as handle:
        example = handle.read()
    # The paragraph that says `make serve` prints them, and the example's comment that names them.
    paragraph = next(part for part in readme.split("\n\n") if "make serve` prints" in part)
    promised = set(re.findall(r"\b(ANSIBLE_[A-Z_]+)\b", paragraph))
    named = set(re.findall(r"\b(ANSIBLE_[A-Z_]+)\b", example))
    assert promised and named and "make serve prints" in " ".join(example.split())
    assert promised | named | {"HZEL_API_URL", "HZEL_API_TOKEN"} <= printed, (promised | named) - printed
    # The README's form of the SSH arguments, with the gateway's directory in place of <gateway dir>.
    form = re.search(r'`(ANSIBLE_SSH_COMMON_ARGS="[^"`]*")`', paragraph).group(1)
    expected = "  export " + form.replace("<gateway dir>", os.path.dirname(info["known_hosts"]))
    assert expected in lines, (expected, lines)


def _taken_port():
    """A port another process listens on, as a second `make serve` finds the first one's."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize("which", ["--port", "--ssh-port"])
def test_a_taken_port_is_told_with_how_to_choose_others(tmp_path, which):
    with _taken_port() as holder:
        taken = holder.getsockname()[1]
        ports = {"--port": _free_port(), "--ssh-port": _free_port()}
        ports[which] = taken
        result = subprocess.run(
            [sys.executable, "-m", "hzel_emulator", "--db", str(tmp_path / "hzel.sqlite3"), "--announce"]
            + ["--port", str(ports["--port"]), "--ssh-port", str(ports["--ssh-port"])],
            env=dict(os.environ, PYTHONPATH=EMULATOR_DIR),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode != 0, result
    message = result.stderr.strip().splitlines()[-1]
    assert "127.0.0.1:%d is taken" % taken in message, result.stderr
    for hint in ("make serve PORT=", "SSH_PORT=", "--port", "--ssh-port", "0 picks a free port"):
        assert hint in message, result.stderr
    # Nothing was announced: the user is not told to paste lines for an emulator that is not there.
    assert "export" not in result.stdout


def test_port_0_listens_on_a_free_port_and_prints_it(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "hzel_emulator", "--db", str(tmp_path / "hzel.sqlite3"), "--port", "0", "--announce"],
        env=dict(os.environ, PYTHONPATH=EMULATOR_DIR),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        first = process.stdout.readline()
        url = re.search(r"on (http://127\.0\.0\.1:(\d+)) ", first)
        assert url and url.group(2) != "0", first
        assert requests.get(url.group(1) + "/_emulator/health", timeout=10).json() == {"status": "ok"}
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()
