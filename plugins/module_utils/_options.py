# The shared options of the hzel modules and inventory plugin: names, bounds, and the one client factory.
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""The options every hzel module and the inventory plugin share, defined once.

Names, types, defaults, environment variables and bounds live here; the
modules' argument specs are built from them, the doc fragment states them (a
unit test compares the two), and ``build_client`` is the one client factory.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional

from ansible_collections.hzel.cloud.plugins.module_utils._containers import ContainersAPI
from ansible_collections.hzel.cloud.plugins.module_utils._rate import RATE_LIMIT_MAX
from ansible_collections.hzel.cloud.plugins.module_utils._transport import (
    DEFAULT_API_URL,
    HzelError,
    HzelTransport,
    plain_number,
)


class InvalidParameters(HzelError):
    pass


class OptionSpec(NamedTuple):
    type: str
    default: Any
    env: str
    low: Optional[float] = None
    high: Optional[float] = None


API_OPTIONS: Dict[str, OptionSpec] = {
    "api_url": OptionSpec("str", DEFAULT_API_URL, "HZEL_API_URL"),
    "api_token": OptionSpec("str", None, "HZEL_API_TOKEN"),
    "validate_certs": OptionSpec("bool", True, "HZEL_VALIDATE_CERTS"),
    "api_timeout": OptionSpec("float", 30.0, "HZEL_API_TIMEOUT", 0.0, 3600.0),
    "api_retries": OptionSpec("int", 5, "HZEL_API_RETRIES", 0, 20),
}

# The client's own request budget, taken by build_client from the same options mapping. It is kept apart from
# API_OPTIONS until every plugin that loops over API_OPTIONS documents it.
RATE_OPTIONS: Dict[str, OptionSpec] = {
    "api_rate_limit": OptionSpec("float", None, "HZEL_API_RATE_LIMIT", 0.0, RATE_LIMIT_MAX),
}

DESIRED_STATES = ("present", "running", "stopped", "restarted")
DEFAULT_STATE = "present"
SPEC_FIELDS = ("cpu_cores", "memory_mb", "disk_gb")
SPEC_DEFAULTS = {"cpu_cores": 1, "memory_mb": 512, "disk_gb": 18}
DISK_GB_RANGE = (18, 32)
WAIT_TIMEOUT_DEFAULT = 300.0
WAIT_TIMEOUT_MAX = 86400.0
PARALLELISM_DEFAULT = 8
PARALLELISM_MAX = 64


def check_number(
    name: str,
    value: Any,
    low: Optional[float] = None,
    high: Optional[float] = None,
    integer: bool = False,
    low_inclusive: bool = False,
) -> Any:
    """A finite number within its bounds, or an InvalidParameters naming the option and the bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise InvalidParameters("%s must be %s, got %r" % (name, "a whole number" if integer else "a number", value))
    if not math.isfinite(value):
        raise InvalidParameters("%s must be a finite number, got %r" % (name, value))
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    if too_low or (high is not None and value > high):
        if low is None:
            bounds = "at most %s" % plain_number(high or 0)
        elif high is None:
            bounds = "%s %s" % ("at least" if low_inclusive else "greater than", plain_number(low))
        else:
            bounds = "%s %s and at most %s" % (
                "at least" if low_inclusive else "greater than",
                plain_number(low),
                plain_number(high),
            )
        raise InvalidParameters("%s must be %s, got %r" % (name, bounds, value))
    return value


def unknown_keys(given: Iterable[Any], valid: Iterable[str]) -> List[str]:
    """Each key of ``given`` that is not in ``valid``, with the nearest valid one: "'stat' (did you mean 'state'?)"."""
    valid = list(valid)
    described = []
    for key in sorted(set(map(str, given)) - set(valid)):
        close = difflib.get_close_matches(key, valid, n=1)
        described.append("%r%s" % (key, " (did you mean %r?)" % close[0] if close else ""))
    return described


def check_rate_limit(value: Any) -> Optional[float]:
    """api_rate_limit as a number of requests per second, or None for no limit."""
    if value is None:
        return None
    spec = RATE_OPTIONS["api_rate_limit"]
    try:
        return float(check_number("api_rate_limit", value, spec.low, spec.high))
    except InvalidParameters as exc:
        raise InvalidParameters(
            "%s (requests per second for all the requests of one client; leave it unset for no limit)" % exc.message
        ) from None


def build_client(options: Mapping[str, Any], pool_size: int = 10, **transport_kwargs: Any) -> ContainersAPI:
    """The client of modules and inventory plugin alike, from the shared options (after their fallbacks)."""
    timeout_spec, retries_spec = API_OPTIONS["api_timeout"], API_OPTIONS["api_retries"]
    timeout = check_number(
        "api_timeout", options.get("api_timeout", timeout_spec.default), timeout_spec.low, timeout_spec.high
    )
    retries = check_number(
        "api_retries",
        options.get("api_retries", retries_spec.default),
        retries_spec.low,
        retries_spec.high,
        integer=True,
        low_inclusive=True,
    )
    rate_limit = check_rate_limit(options.get("api_rate_limit"))
    validate_certs = options.get("validate_certs", True)
    if not isinstance(validate_certs, bool):
        raise InvalidParameters("validate_certs must be true or false, got %r" % (validate_certs,))
    transport = HzelTransport(
        api_url=options.get("api_url") or DEFAULT_API_URL,
        api_token=options.get("api_token"),
        validate_certs=validate_certs,
        timeout=timeout,
        retries=retries,
        pool_size=pool_size,
        rate_limit=rate_limit,
        **transport_kwargs,
    )
    return ContainersAPI(transport)
