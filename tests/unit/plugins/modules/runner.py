# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's main() as Ansible does: arguments in, one JSON result out."""

from __future__ import annotations

import json

import pytest

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19 reads the arguments from basic._ANSIBLE_ARGS
    import contextlib
    from unittest import mock

    from ansible.module_utils import basic

    @contextlib.contextmanager
    def patch_module_args(args):
        arguments = dict({"_ansible_remote_tmp": "/tmp", "_ansible_keep_remote_files": False}, **args)
        with mock.patch.object(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": arguments}).encode()):
            yield


from ansible_collections.hzel.cloud.tests.unit.plugins.module_utils.fake_api import API

TOKEN = "module-secret-token"


def as_play_sees_it(raw):
    """A module's JSON output as the controller hands it to a play: without core's private `_ansible_*` keys.

    Cores add such keys to the raw output for the controller alone (2.22 sends the no_log values in
    `_ansible_new_secrets`, so that the controller masks them in whatever it prints) and pop them before a
    play, a callback or a registered variable sees the result.
    """
    return {key: value for key, value in json.loads(raw).items() if not key.startswith("_ansible_")}


def run_module_raw(module, args, capsys):
    """The module's raw JSON output, as the module process prints it."""
    with patch_module_args(dict({"api_url": API, "api_token": TOKEN, "api_retries": 0}, **args)):
        with pytest.raises(SystemExit):
            module.main()
    return capsys.readouterr().out


def run_module(module, args, capsys):
    return as_play_sees_it(run_module_raw(module, args, capsys))
