# The transport of the hzel API client: one HTTP exchange within a deadline, retries, and error mapping.
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""Transport of the hzel API: one authenticated connection pool, retries, errors.

It knows no resource and nothing of Ansible. Every failure is a
:class:`HzelError` with the API's ``error.code`` and a message for a person,
scrubbed of the token (``_scrub``) and bounded in length. ``request`` returns
the ``data`` of the ``{"data": ...}`` envelope; the endpoint layers check its
shape. What a 429 does is the rule of ``_rate``.

The request path is the cheapest ``requests`` allows: the headers are built
once, the environment (proxy variables, ``REQUESTS_CA_BUNDLE``) is read once
when the transport is made, and each request goes straight to the connection
pool's adapter. No session merges settings per call, so ``~/.netrc`` is never
consulted and cannot replace the bearer token; redirects are not followed (an
API address that redirects is reported with where it points).
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
import traceback
from typing import Any, Callable, Dict, Optional, Tuple

from ansible_collections.hzel.cloud.plugins.module_utils._deadline import set_deadline
from ansible_collections.hzel.cloud.plugins.module_utils._rate import (
    RATE_LIMIT_MAX_WAITS,
    RATE_LIMIT_PATIENCE,
    RateGate,
    RateRule,
    parse_retry_after,
    pause_for,
    read_budget,
)
from ansible_collections.hzel.cloud.plugins.module_utils._scrub import Scrubber, bound, excerpt

try:
    import requests
    from requests.structures import CaseInsensitiveDict
    from requests.utils import get_environ_proxies
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
    from urllib3.exceptions import HTTPError as Urllib3Error

    from ansible_collections.hzel.cloud.plugins.module_utils._deadline import DeadlineAdapter
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR: Optional[str] = traceback.format_exc()
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None

# galaxy.yml holds the same version; a unit test fails when they differ.
COLLECTION_VERSION = "1.1.0"
USER_AGENT = "ansible-hzel.cloud/%s" % COLLECTION_VERSION
DEFAULT_API_URL = "https://api.hzel.org"
TOKEN_HINT = "set api_token or the HZEL_API_TOKEN environment variable"

# 429 is refused before any work is done; 502/503/504 come from what stands in
# front of the API and may or may not have reached it.
RETRY_STATUSES = frozenset((429, 502, 503, 504))
# OpenSSL's reasons for a handshake answered by something that is not TLS (a plain HTTP server, mostly).
_NOT_TLS = frozenset(("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"))
# The largest reply a request takes by default (the containers list): larger is
# refused rather than held in memory. Each endpoint passes the cap of its reply.
MAX_REPLY_BYTES = 16 * 1024 * 1024
_CHUNK = 65536


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


def _reject_constant(name: str) -> Any:
    raise ValueError("%s is not a JSON number" % name)


class _Reply:
    """What came back from one exchange, read whole within the deadline."""

    __slots__ = ("status", "reason", "headers", "body")

    def __init__(self, status: int, reason: str, headers: Any, body: Any) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body


def size_text(size: int) -> str:
    return "%d MiB" % (size // (1024 * 1024)) if size >= 1024 * 1024 else "%d KiB" % (size // 1024)


class HzelTransport:
    """One authenticated connection pool against one hzel API endpoint."""

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
        notify: Optional[Callable[[str], None]] = None,
        rate_limit: Optional[float] = None,
    ) -> None:
        """``rate_limit`` is api_rate_limit: requests per second for every thread using this transport (None: none)."""
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
        # Prepared once (IDNA host, quoting); each request appends a path of ASCII and UUIDs.
        base = requests.PreparedRequest()
        try:
            base.prepare_url(self.base_url, None)
        except (requests.exceptions.RequestException, ValueError, UnicodeError):
            raise HzelError("api_url is not a valid URL: %r" % excerpt(self.api_url, 100)) from None
        self._url_prefix = (base.url or self.base_url).rstrip("/")
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._clock = clock
        # Told once, at the first failure that is retried, what is being retried (a module's warning).
        self.notify = notify
        self._retry_told = threading.Lock()
        self.gate = RateGate(sleep, clock, rate_limit)
        self.rate = RateRule(self.gate, clock)
        self.adapter = DeadlineAdapter(pool_connections=1, pool_maxsize=max(10, pool_size))
        # The environment is read here, once, as a requests session would read it on every call.
        self._proxies = get_environ_proxies(self.base_url)
        self._verify: Any = validate_certs
        if validate_certs:
            self._verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        # The bearer token is a header of its own: no auth handler (and so no ~/.netrc) can replace it.
        self._headers = CaseInsensitiveDict(
            {
                "User-Agent": user_agent,
                "Accept-Encoding": "gzip, deflate",
                "Accept": "application/json",
                "Authorization": "Bearer %s" % api_token,
            }
        )

    def close(self) -> None:
        """Close the pooled connections (they are closed at exit anyway)."""
        self.adapter.close()

    def where(self, method: str, path: str) -> str:
        return "%s %s" % (method, self.base_url + path)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        repeatable: bool = True,
        resolve_open_outcome: Optional[Callable[[], Any]] = None,
        max_bytes: int = MAX_REPLY_BYTES,
    ) -> Any:
        """Send one request with retries; returns the envelope's ``data``.

        ``repeatable`` is False for a request that must not be resent once it may
        have reached the API. ``resolve_open_outcome`` is asked, after a failure
        that leaves the outcome open, whether the request took effect after all:
        what it returns (not None) is the answer, and nothing is resent.
        ``max_bytes`` is the largest reply taken (refused by Content-Length before
        it is read where the API sends one).
        """
        try:
            return self._request(method, path, body, repeatable, resolve_open_outcome, max_bytes)
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
        max_bytes: int,
    ) -> Any:
        attempt = 0
        limited_since: Optional[float] = None
        limited = 0
        while True:
            self.gate.wait()
            try:
                return self._counted_exchange(method, path, body, max_bytes)
            except _Transient as transient:
                if transient.status == 429:
                    now = self._clock()
                    if limited_since is None:
                        limited_since = now
                    delay = transient.retry_after
                    if delay is None:
                        delay = pause_for(self._backoff_delay(limited))
                    limited += 1
                    if limited >= RATE_LIMIT_MAX_WAITS or now - limited_since + delay > RATE_LIMIT_PATIENCE:
                        raise self._give_up(
                            method,
                            path,
                            transient,
                            "after waiting %ds for the API's rate limit" % int(now - limited_since),
                        ) from None
                    self.rate.limited_for(delay)
                    self._sleep(delay)
                    continue
                may_resend = repeatable or not transient.reached_api
                last = attempt >= self.retries or not may_resend
                # Also after the last attempt: a request whose reply was lost may have taken effect.
                look_up = resolve_open_outcome is not None and transient.reached_api
                if not last:
                    self._tell_retrying(method, path, transient)
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

    def _tell_retrying(self, method: str, path: str, transient: _Transient) -> None:
        """The first retry of this transport, once, whatever the number of requests and threads."""
        if self.notify is None or not self._retry_told.acquire(blocking=False):
            return
        what = "could not be reached" if transient.status is None else "answered %s" % transient.reason
        reason = ": %s" % transient.reason if transient.status is None else ""
        self.notify(
            self.scrub(
                "The hzel API at %s %s (%s%s); retrying with backoff, up to %d time%s per request (api_retries), "
                "before the task fails"
                % (self.api_url, what, self.where(method, path), reason, self.retries, "" if self.retries == 1 else "s")
            )
        )

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

    def _counted_exchange(self, method: str, path: str, body: Any, max_bytes: int) -> Any:
        """One exchange that passed the gate, counted in flight until it ends (the API's budget may not count it)."""
        try:
            return self._exchange(method, path, body, max_bytes)
        finally:
            self.gate.request_done()

    def _exchange(self, method: str, path: str, body: Any, max_bytes: int) -> Any:
        """One exchange, bounded as a whole (connect, send, every read) by ``api_timeout``."""
        url = self._url_prefix + path
        prepared = requests.PreparedRequest()
        prepared.method = method
        prepared.url = url
        if body is None:
            prepared.headers = self._headers
        else:
            prepared.body = json.dumps(body).encode("utf-8")
            prepared.headers = self._headers.copy()
            prepared.headers["Content-Type"] = "application/json"
            prepared.headers["Content-Length"] = str(len(prepared.body))
        deadline = time.monotonic() + self.timeout
        set_deadline(deadline)
        try:
            reply = self._perform(prepared, deadline, max_bytes)
        finally:
            set_deadline(None)
        return self._interpret(method, url, reply)

    def _tls_failure(self, exc: Exception) -> HzelError:
        """What went wrong in the TLS handshake, in words: never the HTTP library's class names."""
        text = str(exc)
        found = re.search(r"\[SSL: ([A-Z0-9_]+)\] ([^(')\]]+)", text)
        reason = found.group(2).strip() if found else ""
        if (found and found.group(1) in _NOT_TLS) or re.search(r"wrong version number|record layer failure", text):
            return HzelError(
                "The server at %s does not speak TLS (it answered the TLS handshake as a plain HTTP server would); "
                "if it serves plain HTTP, use api_url %s" % (self.api_url, "http://" + self.api_url[len("https://") :])
            )
        verify = re.search(r"certificate verify failed: ([^(')\]]+)", text)
        if verify or (found and found.group(1) == "CERTIFICATE_VERIFY_FAILED"):
            return HzelError(
                "The TLS certificate of %s could not be verified (%s): give its CA in REQUESTS_CA_BUNDLE, or set "
                "validate_certs to false only for a server you trust"
                % (self.api_url, self._excerpt(verify.group(1).strip() if verify else reason, 120))
            )
        return HzelError(
            "The TLS handshake with %s failed: %s" % (self.api_url, self._excerpt(reason, 120) or "no reason was given")
        )

    def _past_deadline(self) -> _Transient:
        return _Transient("no complete reply within %ss (api_timeout)" % plain_number(self.timeout), reached_api=True)

    def _perform(self, prepared: Any, deadline: float, max_bytes: int) -> _Reply:
        url = prepared.url
        try:
            response = self.adapter.send(
                prepared,
                stream=True,
                timeout=(self.timeout, self.timeout),
                verify=self._verify,
                proxies=self._proxies,
            )
        except requests.exceptions.ConnectTimeout:
            raise _Transient("connection timed out after %ss" % plain_number(self.timeout), reached_api=False) from None
        except requests.exceptions.ReadTimeout:
            raise self._past_deadline() from None
        except requests.exceptions.SSLError as exc:
            raise self._tls_failure(exc) from None
        except requests.exceptions.ConnectionError as exc:
            reason, never_sent = _connection_reason(exc)
            if not never_sent and time.monotonic() >= deadline:
                raise self._past_deadline() from None
            raise _Transient(self._excerpt(reason, 160), reached_api=not never_sent) from None
        except requests.exceptions.RequestException as exc:
            raise HzelError("Request to %s failed: %s" % (url, self._excerpt(exc, 200))) from None
        except (ValueError, TypeError) as exc:
            # A header value or URL that the HTTP library refuses; its text may repeat the header.
            raise HzelError("Request to %s could not be sent: %s" % (url, type(exc).__name__)) from None
        status = response.status_code
        raw = response.raw
        finished = False
        try:
            length = response.headers.get("Content-Length") or ""
            if length.isdigit() and int(length) > max_bytes:
                raise self._too_large(prepared, status, max_bytes)
            # One buffer that grows; never a list of chunks next to their joined copy.
            body = bytearray()
            while True:
                chunk = raw.read(_CHUNK, decode_content=True)
                if not chunk:
                    break
                body += chunk
                if len(body) > max_bytes:
                    raise self._too_large(prepared, status, max_bytes)
                if time.monotonic() >= deadline:
                    raise self._past_deadline()
            finished = True
        except ReadTimeoutError:
            raise self._past_deadline() from None
        except (Urllib3Error, OSError):
            if time.monotonic() >= deadline:
                raise self._past_deadline() from None
            raise _Transient("the reply was cut off", reached_api=True) from None
        finally:
            if finished:
                raw.release_conn()
            else:
                # Given up: the connection is closed now, not left to the end of the process.
                response.close()
        return _Reply(status, response.reason or "", response.headers, body)

    def _too_large(self, prepared: Any, status: int, max_bytes: int) -> HzelUnexpectedReply:
        return HzelUnexpectedReply(
            "The hzel API answered %s %s with a reply larger than %s, more than this endpoint ever sends"
            % (prepared.method, prepared.url, size_text(max_bytes)),
            status,
        )

    def _parse(self, body: Any) -> Tuple[Any, Optional[str]]:
        """The JSON of a reply, or None and why it cannot be read (never a Python error of the parser)."""
        try:
            return json.loads(body, parse_constant=_reject_constant), None
        except RecursionError:
            return None, "JSON nested too deeply"
        except ValueError as exc:
            if "is not a JSON number" in str(exc):
                return None, "JSON with a number that is not finite"
            return None, "a reply that is not valid JSON"

    def _interpret(self, method: str, url: str, reply: _Reply) -> Any:
        status = reply.status
        if status != 429:
            self.rate.answered()
        budget = read_budget(reply.headers)
        if budget is not None:
            self.gate.budget_from(*budget)
        content_type = reply.headers.get("Content-Type", "") or ""
        payload = None
        is_json = "json" in content_type.lower()
        unreadable = None
        if is_json:
            payload, unreadable = self._parse(reply.body)
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
                self._excerpt(bytes(reply.body).decode("utf-8", "replace"), 120),
            )
        elif unreadable:
            described = "HTTP %d with %s" % (status, unreadable)
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
        if 300 <= status < 400:
            raise HzelError(
                "The hzel API answered %s with a redirect (HTTP %d) to %r, which is not followed: "
                "set api_url to the address the API is served at"
                % (where, status, self._excerpt(reply.headers.get("Location"), 200)),
                status,
            )
        if unreadable:
            raise HzelUnexpectedReply("The hzel API answered %s with %s" % (where, described), status)
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
    api_url = api_url.rstrip("/")
    # Every request path is api_url + /api/v1 + ...: an api_url that already ends so 404s on every request.
    if re.search(r"/api/v1$", api_url, re.IGNORECASE):
        raise HzelError(
            "api_url must not end with /api/v1, which is added to every request: drop /api/v1 and use %r"
            % excerpt(api_url[: -len("/api/v1")], 100)
        )
    return api_url


def plain_number(value: float) -> str:
    """30 rather than 30.0; 0.5 stays 0.5."""
    return str(int(value)) if float(value).is_integer() else str(value)
