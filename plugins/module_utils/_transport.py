# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""Transport of the hzel API: one authenticated session, retries, errors.

It knows no resource and nothing of Ansible. Every failure is a
:class:`HzelError` with the API's ``error.code`` and a message for a person,
scrubbed of the token and bounded in length. ``request`` returns the ``data``
of the ``{"data": ...}`` envelope; the endpoint layers check its shape.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
import traceback
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import quote

try:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR: Optional[str] = traceback.format_exc()
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None

# galaxy.yml holds the same version; a unit test fails when they differ.
COLLECTION_VERSION = "0.1.0"
USER_AGENT = "ansible-hzel.cloud/%s" % COLLECTION_VERSION
DEFAULT_API_URL = "https://api.hzel.org"
TOKEN_HINT = "set api_token or the HZEL_API_TOKEN environment variable"

# 429 is refused before any work is done; 502/503/504 come from what stands in
# front of the API and may or may not have reached it.
RETRY_STATUSES = frozenset((429, 502, 503, 504))
RETRY_AFTER_MAX = 60.0
# A 429 does not spend api_retries (the API asked us to wait, nothing failed),
# but a request stops waiting for the rate limit after this many seconds in all.
RATE_LIMIT_PATIENCE = 120.0
# What a message may carry of text from outside (an API message, a page excerpt),
# and what a whole message may be, so that a 10 MB reply cannot become a 10 MB msg.
EXCERPT_LIMIT = 300
MESSAGE_LIMIT = 2000
# A reply larger than this is refused rather than held in memory (10,000
# containers are about 2 MB).
MAX_REPLY_BYTES = 64 * 1024 * 1024
SCRUBBED = "********"


class HzelError(Exception):
    """A failure a user can act on. ``code`` is the API's error.code where it sent one."""

    def __init__(self, message: str, status: Optional[int] = None, code: Optional[str] = None) -> None:
        message = bound(message)
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        # What a module adds to its failed result (records, actions, problems).
        self.result: Dict[str, Any] = {}

    def __str__(self) -> str:
        return self.message


class HzelAuthError(HzelError):
    pass


class HzelNotFound(HzelError):
    pass


class HzelBadRequest(HzelError):
    pass


class HzelUnavailable(HzelError):
    """The API could not be reached, or kept answering with a transient error."""


class HzelUnexpectedReply(HzelError):
    """The API answered with something that does not match the reference."""


class _Transient(Exception):
    """One failed exchange that a later attempt may get past."""

    def __init__(
        self, reason: str, reached_api: bool, retry_after: Optional[float] = None, status: Optional[int] = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        # False only where the request certainly did not reach the API.
        self.reached_api = reached_api
        self.retry_after = retry_after
        self.status = status


def bound(text: str, limit: int = MESSAGE_LIMIT) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def excerpt(text: Any, limit: int = EXCERPT_LIMIT) -> str:
    """A short one-line account of outside text: tags and control characters gone, length bounded."""
    text = re.sub(r"<[^>]*>", " ", str(text or "")[: limit * 20])
    text = re.sub(r"[\x00-\x20\x7f]+", " ", text).strip()
    return bound(text, limit)


def token_problem(token: Any) -> Optional[str]:
    """Why a token cannot be sent as a header, without repeating any of it; None when it can."""
    if not token:
        return "No hzel API token was given: %s" % TOKEN_HINT
    if not isinstance(token, str):
        return "api_token must be a string"
    if re.search(r"[\r\n]", token):
        return (
            "api_token contains a line break (often a trailing newline from 'echo' or a file); "
            "it was not sent. Remove the line break, for example re-create the vaulted value with 'echo -n'"
        )
    if re.search(r"[\x00-\x1f\x7f]", token):
        return "api_token contains a control character; it was not sent"
    if re.search(r"\s", token):
        return "api_token contains white space; a bearer token has none, so it was not sent"
    if any(ord(character) > 126 for character in token):
        return "api_token contains a character that is not printable ASCII; it was not sent"
    return None


def secret_forms(secret: str) -> List[str]:
    """Every form in which a secret could show up in a message: raw, escaped, quoted, JSON."""
    forms = {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        secret.encode("unicode_escape").decode("ascii", "replace"),
    }
    if HAS_REQUESTS:
        forms.add(quote(secret, safe=""))
    # Longest first, so that a form containing another is replaced whole.
    return sorted((form for form in forms if len(form) >= 4), key=len, reverse=True)


class Scrubber:
    """Takes a secret out of text in every form it could take, before the text is cut to length.

    The one scrubbing point: the transport, the module layer and the inventory plugin each hold
    one for the token they were given (a missing or non-string token scrubs nothing).
    """

    def __init__(self, secret: Any) -> None:
        self.forms = secret_forms(secret) if isinstance(secret, str) and secret else []

    def _remove(self, text: Any) -> str:
        text = str(text)
        for form in self.forms:
            text = text.replace(form, SCRUBBED)
        return text

    def __call__(self, text: Any, limit: int = MESSAGE_LIMIT) -> str:
        return bound(self._remove(text), limit)

    def excerpt(self, text: Any, limit: int = EXCERPT_LIMIT) -> str:
        """A one-line excerpt of outside text; scrubbed first, so a cut cannot leave a prefix of the secret."""
        return excerpt(self._remove(text or ""), limit)


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


def _connection_reason(exc: Exception) -> Tuple[str, bool]:
    """A short account of a connection failure and whether the request got out at all."""
    reason = exc.args[0] if exc.args else exc
    inner = getattr(reason, "reason", reason)
    never_sent = isinstance(inner, (NewConnectionError, ConnectTimeoutError))
    text = str(inner)
    errno_match = re.search(r"\[Errno -?\d+\] ([^)'\"]+)", text)
    if errno_match:
        text = errno_match.group(1).strip()
    elif "RemoteDisconnected" in text or "Connection aborted" in text:
        text = "the connection was closed before a reply arrived"
    return excerpt(text, 160), never_sent


class RateGate:
    """A back-off shared by every request of one transport: a 429 holds them all.

    Without it, each request of a pool meets the rate limit on its own and
    spends its own retries; with it, the pool slows down as a whole.
    """

    def __init__(self, sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._not_before = 0.0
        self._sleep = sleep
        self._clock = clock

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)

    def wait(self) -> float:
        """Sleep until the gate is open; returns the seconds slept."""
        slept = 0.0
        while True:
            with self._lock:
                remaining = self._not_before - self._clock()
            if remaining <= 0:
                return slept
            self._sleep(remaining)
            slept += remaining


class _Reply:
    """What came back from one exchange, read whole within the deadline."""

    def __init__(self, status: int, reason: str, headers: Any, body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body


class HzelTransport:
    """One authenticated session against one hzel API endpoint."""

    def __init__(
        self,
        api_url: Optional[str],
        api_token: Optional[str],
        validate_certs: bool = True,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.5,
        backoff_max: float = 8.0,
        pool_size: int = 10,
        user_agent: str = USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not HAS_REQUESTS:
            raise HzelError("The Python library 'requests' is required to talk to the hzel API")
        problem = token_problem(api_token)
        if problem:
            raise HzelAuthError(problem)
        # The one scrubbing point of everything this transport raises.
        self.scrub = Scrubber(api_token)
        self._excerpt = self.scrub.excerpt
        self.api_url = check_api_url(api_url)
        self.base_url = self.api_url + "/api/v1"
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._clock = clock
        self.gate = RateGate(sleep, clock)
        self.session = requests.Session()
        self.session.verify = validate_certs
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(10, pool_size))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(
            {
                "Authorization": "Bearer %s" % api_token,
                "User-Agent": user_agent,
                "Accept": "application/json",
            }
        )

    def where(self, method: str, path: str) -> str:
        return "%s %s" % (method, self.base_url + path)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        repeatable: bool = True,
        resolve_open_outcome: Optional[Callable[[], Any]] = None,
    ) -> Any:
        """Send one request with retries; returns the envelope's ``data``.

        ``repeatable`` is False for a request that must not be resent once it may
        have reached the API. ``resolve_open_outcome`` is asked, after a failure
        that leaves the outcome open, whether the request took effect after all:
        what it returns (not None) is the answer, and nothing is resent.
        """
        try:
            return self._request(method, path, body, repeatable, resolve_open_outcome)
        except HzelError as exc:
            exc.message = self.scrub(exc.message)
            exc.args = (exc.message,)
            raise

    def _request(
        self,
        method: str,
        path: str,
        body: Any,
        repeatable: bool,
        resolve_open_outcome: Optional[Callable[[], Any]],
    ) -> Any:
        attempt = 0
        rate_limited_for = 0.0
        while True:
            rate_limited_for += self.gate.wait()
            try:
                return self._exchange(method, path, body)
            except _Transient as transient:
                if transient.status == 429:
                    delay = transient.retry_after
                    if delay is None:
                        delay = self._backoff_delay(attempt)
                    if rate_limited_for + delay > RATE_LIMIT_PATIENCE:
                        raise self._give_up(
                            method,
                            path,
                            transient,
                            "after waiting %ds for the API's rate limit" % int(rate_limited_for),
                        ) from None
                    self.gate.hold(delay)
                    continue
                may_resend = repeatable or not transient.reached_api
                last = attempt >= self.retries or not may_resend
                # Also after the last attempt: a request whose reply was lost may have taken effect.
                look_up = resolve_open_outcome is not None and transient.reached_api
                if not last or look_up:
                    self._sleep(
                        transient.retry_after if transient.retry_after is not None else self._backoff_delay(attempt)
                    )
                if look_up and resolve_open_outcome is not None:
                    found = resolve_open_outcome()
                    if found is not None:
                        return found
                if last:
                    raise self._give_up(
                        method, path, transient, "after %d attempt%s" % (attempt + 1, "" if attempt == 0 else "s")
                    ) from None
                attempt += 1

    def _backoff_delay(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff * (2**attempt)) * random.uniform(0.5, 1.0)

    def _give_up(self, method: str, path: str, transient: _Transient, tries: str) -> HzelUnavailable:
        where = self.where(method, path)
        if transient.status is None:
            return HzelUnavailable(
                "The hzel API at %s could not be reached (%s): %s %s" % (self.api_url, where, transient.reason, tries)
            )
        return HzelUnavailable(
            "The hzel API answered %s with %s %s" % (where, transient.reason, tries), status=transient.status
        )

    def _exchange(self, method: str, path: str, body: Any) -> Any:
        """One exchange, bounded as a whole by the timeout.

        requests' timeout bounds each socket operation, so a server that trickles
        a byte at a time would hold a request for ever. The exchange runs in a
        daemon thread and is abandoned at the deadline; a daemon thread does not
        keep the process alive.
        """
        url = self.base_url + path
        outcome: Dict[str, Any] = {}
        finished = threading.Event()

        def perform() -> None:
            try:
                outcome["reply"] = self._perform(method, url, body)
            except BaseException as exc:  # handed to the waiting thread, which raises it
                outcome["error"] = exc
            finally:
                finished.set()

        worker = threading.Thread(target=perform, name="hzel-request", daemon=True)
        worker.start()
        if not finished.wait(self.timeout):
            raise _Transient(
                "no complete reply within %ss (api_timeout)" % plain_number(self.timeout), reached_api=True
            ) from None
        if "error" in outcome:
            raise outcome["error"]
        return self._interpret(method, url, outcome["reply"])

    def _perform(self, method: str, url: str, body: Any) -> _Reply:
        try:
            response = self.session.request(method, url, json=body, timeout=self.timeout, stream=True)
            try:
                chunks = []
                size = 0
                for chunk in response.iter_content(65536):
                    size += len(chunk)
                    if size > MAX_REPLY_BYTES:
                        raise HzelUnexpectedReply(
                            "The hzel API answered %s %s with a reply larger than %d MiB"
                            % (method, url, MAX_REPLY_BYTES // (1024 * 1024)),
                            response.status_code,
                        ) from None
                    chunks.append(chunk)
                return _Reply(response.status_code, response.reason or "", response.headers, b"".join(chunks))
            finally:
                response.close()
        except requests.exceptions.ConnectTimeout:
            raise _Transient("connection timed out after %ss" % plain_number(self.timeout), reached_api=False) from None
        except requests.exceptions.ReadTimeout:
            raise _Transient(
                "no complete reply within %ss (api_timeout)" % plain_number(self.timeout), reached_api=True
            ) from None
        except requests.exceptions.SSLError as exc:
            raise HzelError(
                "TLS error talking to %s: %s (validate_certs)" % (self.api_url, self._excerpt(exc, 200))
            ) from None
        except requests.exceptions.ConnectionError as exc:
            reason, never_sent = _connection_reason(exc)
            raise _Transient(reason, reached_api=not never_sent) from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            raise _Transient("the reply was cut off", reached_api=True) from None
        except requests.exceptions.RequestException as exc:
            raise HzelError("Request to %s failed: %s" % (url, self._excerpt(exc, 200))) from None
        except (ValueError, TypeError) as exc:
            # A header value or URL that the HTTP library refuses; its text may repeat the header.
            raise HzelError("Request to %s could not be sent: %s" % (url, type(exc).__name__)) from None

    def _interpret(self, method: str, url: str, reply: _Reply) -> Any:
        status = reply.status
        content_type = reply.headers.get("Content-Type", "") or ""
        payload = None
        is_json = "json" in content_type.lower()
        if is_json:
            try:
                payload = json.loads(reply.body.decode("utf-8"))
            except ValueError:
                is_json = False
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, dict):
            error = {}
        code = error.get("code") if isinstance(error.get("code"), str) else None
        code = self._excerpt(code, 60) if code else None
        api_message = self._excerpt(error.get("message")) if isinstance(error.get("message"), str) else ""
        if not is_json:
            described = "HTTP %d with a reply that is not JSON (%s): %r" % (
                status,
                self._excerpt(content_type, 60) or "no content type",
                self._excerpt(reply.body.decode("utf-8", "replace"), 120),
            )
        else:
            described = "HTTP %d %s%s" % (
                status,
                code or self._excerpt(reply.reason, 60),
                ": %s" % api_message if api_message else "",
            )
        if status in RETRY_STATUSES:
            raise _Transient(
                described,
                reached_api=status != 429,
                status=status,
                retry_after=parse_retry_after(reply.headers.get("Retry-After")),
            )
        where = "%s %s" % (method, url)
        if status == 401:
            raise HzelAuthError(
                "Authentication with the hzel API failed (%s): check api_token (%s)" % (described, TOKEN_HINT),
                status,
                code,
            )
        if status == 403 and code == "CSRF_REJECTED":
            raise HzelAuthError(
                "The hzel API refused %s as a browser-session request without a CSRF token (%s); "
                "use a personal access token as api_token" % (where, described),
                status,
                code,
            )
        if status == 404:
            raise HzelNotFound("Not found: %s (%s)" % (where, described), status, code)
        if status in (400, 409, 422):
            raise HzelBadRequest("The hzel API refused %s: %s" % (where, api_message or described), status, code)
        if status >= 400:
            raise HzelError("The hzel API answered %s with %s" % (where, described), status, code)
        if not isinstance(payload, dict) or "data" not in payload:
            raise HzelUnexpectedReply(
                "The hzel API answered %s with %s, not the expected {\"data\": ...} envelope" % (where, described),
                status,
            )
        return payload["data"]


def check_api_url(api_url: Optional[str]) -> str:
    api_url = DEFAULT_API_URL if api_url is None else api_url
    if not isinstance(api_url, str) or not re.fullmatch(r"https?://[^/\s?#@]+(/[^\s?#]*)?", api_url):
        raise HzelError(
            "api_url must be an http:// or https:// URL without spaces, query or credentials, got %r"
            % excerpt(api_url, 100)
        )
    return api_url.rstrip("/")


def plain_number(value: float) -> str:
    """30 rather than 30.0; 0.5 stays 0.5."""
    return str(int(value)) if float(value).is_integer() else str(value)
