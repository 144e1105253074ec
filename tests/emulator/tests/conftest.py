# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each test talks HTTP to a real emulator process started on a free port."""

import os
import socket
import subprocess
import sys
import time

import pytest
import requests

EMULATOR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENS = {"admin": "hzel-admin-token", "alice": "hzel-demo-token", "bob": "hzel-bob-token"}


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Emulator:
    def __init__(self, db, provision_seconds, extra_args=()):
        self.db = db
        self.provision_seconds = provision_seconds
        self.extra_args = list(extra_args)
        self.process = None
        self.url = None

    def start(self):
        port = _free_port()
        env = dict(os.environ, PYTHONPATH=EMULATOR_DIR)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hzel_emulator",
                "--port",
                str(port),
                "--db",
                self.db,
                "--provision-seconds",
                str(self.provision_seconds),
            ]
            + self.extra_args,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = "http://127.0.0.1:%d" % port
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/_emulator/health", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("emulator did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)

    def api(self, method, path, token="alice", **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = "Bearer " + TOKENS.get(token, token)
        return requests.request(method, self.url + "/api/v1" + path, headers=headers, timeout=10, **kwargs)

    def control(self, method, path, **kwargs):
        response = requests.request(method, self.url + "/_emulator" + path, timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def create(self, hostname, token="alice", **spec):
        response = self.api("POST", "/containers", token=token, json=dict(hostname=hostname, **spec))
        assert response.status_code == 200, response.text
        return response.json()["data"]


@pytest.fixture
def emulator(tmp_path):
    instance = Emulator(str(tmp_path / "hzel.sqlite3"), provision_seconds=0.3).start()
    yield instance
    instance.stop()
