# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""The thin layer between AnsibleModule and the plain client and logic."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.hzel.cloud.plugins.module_utils._client import (
    DEFAULT_API_URL,
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    HzelClient,
    HzelError,
)


def hzel_argument_spec():
    """The options every hzel module takes (documented in the hzel.cloud.hzel doc fragment)."""
    return dict(
        api_url=dict(type="str", default=DEFAULT_API_URL, fallback=(env_fallback, ["HZEL_API_URL"])),
        api_token=dict(type="str", no_log=True, fallback=(env_fallback, ["HZEL_API_TOKEN"])),
        validate_certs=dict(type="bool", default=True),
        api_timeout=dict(type="float", default=30.0),
        api_retries=dict(type="int", default=5),
    )


def hzel_module(argument_spec, **kwargs):
    spec = hzel_argument_spec()
    spec.update(argument_spec)
    module = AnsibleModule(argument_spec=spec, **kwargs)
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
    return module


def client_from_params(params):
    return HzelClient(
        api_url=params["api_url"],
        api_token=params["api_token"],
        validate_certs=params["validate_certs"],
        timeout=params["api_timeout"],
        retries=params["api_retries"],
    )


def run(module, work):
    """Run work(client) and turn every HzelError into one fail_json message.

    fail_json is called after the except block on purpose: inside it, Ansible
    would attach the Python traceback of the handled error to the result.
    """
    try:
        client = client_from_params(module.params)
        result = work(client)
    except HzelError as exc:
        failure = exc
    else:
        module.exit_json(**result)
    details = {key: value for key, value in (("error_code", failure.code), ("status", failure.status)) if value is not None}
    module.fail_json(msg=failure.message, **details)
