# The module layer of the hzel collection: between AnsibleModule and the plain client and logic.
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""The thin layer between AnsibleModule and the plain client and logic."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.hzel.cloud.plugins.module_utils._executor import (
    FleetFailed,
    FleetOutcome,
    error_details,
    unexpected_failure,
)
from ansible_collections.hzel.cloud.plugins.module_utils._options import (
    API_OPTIONS,
    DEFAULT_STATE,
    DESIRED_STATES,
    RATE_OPTIONS,
    WAIT_TIMEOUT_DEFAULT,
    build_client,
)
from ansible_collections.hzel.cloud.plugins.module_utils._plan import FleetSettings, PlanRefused, settings_from
from ansible_collections.hzel.cloud.plugins.module_utils._transport import (
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    HzelError,
    Scrubber,
)


def hzel_argument_spec() -> Dict[str, Dict[str, Any]]:
    """The options every hzel module takes (documented in the hzel.cloud.hzel doc fragment)."""
    spec = {}
    for name, option in list(API_OPTIONS.items()) + list(RATE_OPTIONS.items()):
        entry: Dict[str, Any] = dict(type=option.type, fallback=(env_fallback, [option.env]))
        if option.default is not None:
            entry["default"] = option.default
        if name == "api_token":
            entry["no_log"] = True
        spec[name] = entry
    return spec


def converge_argument_spec() -> Dict[str, Dict[str, Any]]:
    """The options of the modules that converge containers (state, wait, wait_timeout)."""
    return dict(
        state=dict(type="str", default=DEFAULT_STATE, choices=list(DESIRED_STATES)),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="float", default=WAIT_TIMEOUT_DEFAULT),
    )


def hzel_module(argument_spec: Dict[str, Any], **kwargs: Any) -> AnsibleModule:
    spec = hzel_argument_spec()
    spec.update(argument_spec)
    module = AnsibleModule(argument_spec=spec, **kwargs)
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
    return module


def fleet_settings(params: Dict[str, Any]) -> FleetSettings:
    return settings_from(params["wait"], params["wait_timeout"], params.get("parallelism") or 1)


def fleet_result(outcome: FleetOutcome) -> Dict[str, Any]:
    result = dict(changed=outcome.changed, containers=outcome.records, actions=outcome.action_map)
    if outcome.failures:
        result["failures"] = outcome.failure_map
        details = outcome.failure_details
        if details:
            result["failure_details"] = details
    if outcome.released:
        result["left_failed"] = outcome.released_map
    return result


def converge_result(
    module: AnsibleModule,
    converge: Callable[[], FleetOutcome],
    extra: Optional[Callable[[Sequence[Optional[Dict[str, Any]]]], Dict[str, Any]]] = None,
) -> Dict[str, Any]:
    """The result of a converge, with ``extra(records)`` added and the diff in diff mode.

    A refused plan carries ``extra([])`` beside its problems, and a partial failure the fleet result with
    ``extra(records)``, so that a failed task still reports what it did.
    """
    added = extra or (lambda records: {})
    try:
        outcome = converge()
    except PlanRefused as exc:
        exc.result.update(added([]))
        raise
    except FleetFailed as exc:
        exc.result = dict(fleet_result(exc.outcome), **added(exc.outcome.records))
        raise
    result = dict(fleet_result(outcome), **added(outcome.records))
    if module._diff:
        result["diff"] = outcome.diffs()
    return result


def run(module: AnsibleModule, work: Callable[[Any], Dict[str, Any]], pool_size: int = 10) -> None:
    """Run work(client) and turn every HzelError into one fail_json message.

    fail_json is called after the except block on purpose: inside it, Ansible
    would attach the Python traceback of the handled error to the result. The
    message is scrubbed of the token in every form (no_log masks only the raw
    value) and bounded in length. Any other exception is a defect or an
    unforeseen reply: it too ends in one message naming its class, not in a
    traceback.
    """
    scrub = Scrubber(module.params.get("api_token"))
    try:
        client = build_client(module.params, pool_size=pool_size)
        transport = getattr(client, "transport", None)
        if transport is not None:
            # The first retry is told at once, as one warning: the final failure may take a while.
            transport.notify = module.warn
        result = work(client)
    except HzelError as exc:
        failure = exc
    except Exception as exc:
        failure = unexpected_failure(exc, scrub)
    else:
        module.exit_json(**result)
        return  # exit_json does not return; this says so to the reader and to pylint
    details = error_details(failure)
    details.update(failure.result)
    # The token may not have reached a transport (refused before one existed): scrub here as well.
    module.fail_json(msg=scrub(failure.message), **details)
