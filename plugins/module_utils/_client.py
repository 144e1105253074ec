# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""HTTP client of the hzel containers API.

It knows nothing of Ansible: modules, the info module and the inventory plugin
all use it, and every failure is a :class:`HzelError` carrying the API's
``error.code`` and a message written for a person.
"""

from __future__ import annotations

import random
import re
import time
import traceback
from email.utils import parsedate_to_datetime

try:
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None

COLLECTION_VERSION = "0.1.0"
USER_AGENT = "ansible-hzel.cloud/%s" % COLLECTION_VERSION
DEFAULT_API_URL = "https://api.hzel.org"
RECORD_FIELDS = ("id", "user_id", "hostname", "state", "cpu_cores", "memory_mb", "disk_gb", "created_at")
TOKEN_HINT = "set api_token or the HZEL_API_TOKEN environment variable"

# 429 is refused before any work is done; 502/503/504 come from what stands in
# front of the API and may or may not have reached it.
RETRY_STATUSES = frozenset((429, 502, 503, 504))
RETRY_AFTER_MAX = 60.0


class HzelError(Exception):
    """A failure a user can act on. ``code`` is the API's error.code where it sent one."""

    def __init__(self, message, status=None, code=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class HzelAuthError(HzelError):
    pass


class HzelNotFound(HzelError):
    pass


class HzelBadRequest(HzelError):
    pass


class HzelUnavailable(HzelError):
    """The API could not be reached, or kept answering with a transient error."""


class _Transient(Exception):
    """One failed exchange that a later attempt may get past."""

    def __init__(self, reason, reached_api, retry_after=None, status=None):
        super().__init__(reason)
        self.reason = reason
        # False only where the request certainly did not reach the API.
        self.reached_api = reached_api
        self.retry_after = retry_after
        self.status = status


def _excerpt(text, limit=120):
    text = re.sub(r"<[^>]*>", " ", text or "")
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _parse_retry_after(value):
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


def _connection_reason(exc):
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
    return _excerpt(text, 160), never_sent


class HzelClient:
    """One authenticated session against one hzel API endpoint."""

    def __init__(self, api_url, api_token, validate_certs=True, timeout=30.0, retries=5,
                 backoff=0.5, backoff_max=8.0, user_agent=USER_AGENT, sleep=time.sleep):
        if not HAS_REQUESTS:
            raise HzelError("The Python library 'requests' is required to talk to the hzel API")
        if not api_token:
            raise HzelAuthError("No hzel API token was given: %s" % TOKEN_HINT)
        api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        if not re.match(r"^https?://[^/\s]+", api_url):
            raise HzelError("api_url must be an http:// or https:// URL, got %r" % api_url)
        if timeout is None or timeout <= 0:
            raise HzelError("api_timeout must be a number of seconds greater than 0, got %r" % timeout)
        if retries is None or retries < 0:
            raise HzelError("api_retries must be 0 or more, got %r" % retries)
        self.api_url = api_url
        self.base_url = api_url + "/api/v1"
        self.timeout = timeout
        self.retries = int(retries)
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._sleep = sleep
        self.session = requests.Session()
        self.session.verify = validate_certs
        self.session.headers.update({
            "Authorization": "Bearer %s" % api_token,
            "User-Agent": user_agent,
            "Accept": "application/json",
        })

    # the resource ---------------------------------------------------------
    def list_containers(self):
        return self._call("GET", "/containers")

    def get_container(self, container_id):
        return self._call("GET", "/containers/%s" % _quote(container_id))

    def find_container(self, hostname):
        """The caller's container with this hostname, or None."""
        for container in self.list_containers():
            if container.get("hostname") == hostname:
                return container
        return None

    def create_container(self, spec):
        """Create a container; never creates two, even when replies are lost.

        The API has no idempotency key, so after an answer that leaves the
        outcome open (a lost reply, a timeout, a 5xx) the hostname is looked up
        before the create is sent again.
        """
        def already_created(transient):
            if not transient.reached_api:
                return None
            return self.find_container(spec["hostname"])

        try:
            return self._call("POST", "/containers", body=spec, resend_unless=already_created)
        except HzelError as exc:
            if exc.status is None or exc.status < 500:
                raise
            found = self.find_container(spec["hostname"])
            if found is None:
                raise
            return found

    def start_container(self, container_id):
        return self._power(container_id, "start", repeatable=True)

    def stop_container(self, container_id):
        return self._power(container_id, "stop", repeatable=True)

    def restart_container(self, container_id):
        # A second restart is a second outage: only resent when the first surely never arrived.
        return self._power(container_id, "restart", repeatable=False)

    def get_metrics(self, container_id):
        return self._call("GET", "/containers/%s/metrics" % _quote(container_id))

    def _power(self, container_id, action, repeatable):
        path = "/containers/%s/%s" % (_quote(container_id), action)
        return self._call("POST", path, repeatable=repeatable)

    # transport --------------------------------------------------------------
    def _call(self, method, path, body=None, repeatable=True, resend_unless=None):
        attempt = 0
        while True:
            try:
                return self._exchange(method, path, body)
            except _Transient as transient:
                may_resend = repeatable or not transient.reached_api or transient.status == 429
                last = attempt >= self.retries or not may_resend
                # Also after the last attempt: a create whose reply was lost may have been committed.
                look_up = resend_unless is not None and transient.status != 429
                if not last or look_up:
                    self._pause(attempt, transient.retry_after)
                if look_up:
                    found = resend_unless(transient)
                    if found is not None:
                        return found
                if last:
                    raise self._give_up(method, path, transient, attempt + 1)
                attempt += 1

    def _pause(self, attempt, retry_after):
        if retry_after is not None:
            delay = retry_after
        else:
            delay = min(self.backoff_max, self.backoff * (2 ** attempt)) * random.uniform(0.5, 1.0)
        self._sleep(delay)

    def _give_up(self, method, path, transient, attempts):
        where = "%s %s" % (method, self.base_url + path)
        tries = "after %d attempt%s" % (attempts, "" if attempts == 1 else "s")
        if transient.status is None:
            return HzelUnavailable("The hzel API at %s could not be reached (%s): %s %s" % (
                self.api_url, where, transient.reason, tries))
        return HzelUnavailable("The hzel API answered %s with %s %s" % (where, transient.reason, tries),
                               status=transient.status)

    def _exchange(self, method, path, body):
        url = self.base_url + path
        try:
            response = self.session.request(method, url, json=body, timeout=self.timeout)
        except requests.exceptions.ConnectTimeout:
            raise _Transient("connection timed out after %ss" % self.timeout, reached_api=False)
        except requests.exceptions.ReadTimeout:
            raise _Transient("no reply within %ss" % self.timeout, reached_api=True)
        except requests.exceptions.SSLError as exc:
            raise HzelError("TLS error talking to %s: %s (validate_certs)" % (self.api_url, _excerpt(str(exc), 200)))
        except requests.exceptions.ConnectionError as exc:
            reason, never_sent = _connection_reason(exc)
            raise _Transient(reason, reached_api=not never_sent)
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            raise _Transient("the reply was cut off", reached_api=True)
        except requests.exceptions.RequestException as exc:
            raise HzelError("Request to %s failed: %s" % (url, _excerpt(str(exc), 200)))
        return self._interpret(method, url, response)

    def _interpret(self, method, url, response):
        status = response.status_code
        payload = None
        content_type = response.headers.get("Content-Type", "")
        if "json" in content_type.lower():
            try:
                payload = response.json()
            except ValueError:
                payload = None
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, dict):
            error = {}
        code = error.get("code")
        api_message = error.get("message") or ""
        if payload is None and status != 204:
            described = "HTTP %d with a reply that is not JSON (%s): %r" % (
                status, content_type or "no content type", _excerpt(response.text))
        else:
            described = "HTTP %d %s%s" % (status, code or response.reason or "", ": %s" % api_message if api_message else "")
        if status in RETRY_STATUSES:
            raise _Transient(described, reached_api=status != 429, status=status,
                             retry_after=_parse_retry_after(response.headers.get("Retry-After")))
        where = "%s %s" % (method, url)
        if status == 401:
            raise HzelAuthError("Authentication with the hzel API failed (%s): check api_token (%s)" % (
                described, TOKEN_HINT), status, code)
        if status == 403 and code == "CSRF_REJECTED":
            raise HzelAuthError("The hzel API refused %s as a browser-session request without a CSRF token (%s); "
                                "use a personal access token as api_token" % (where, described), status, code)
        if status == 404:
            raise HzelNotFound("Not found: %s (%s)" % (where, described), status, code)
        if status == 400:
            raise HzelBadRequest("The hzel API refused %s: %s" % (where, api_message or described), status, code)
        if status >= 400:
            raise HzelError("The hzel API answered %s with %s" % (where, described), status, code)
        if not isinstance(payload, dict) or "data" not in payload:
            raise HzelError("The hzel API answered %s with %s, not the expected {\"data\": ...} envelope" % (
                where, described), status)
        return payload["data"]


def _quote(value):
    return requests.utils.quote(str(value), safe="")
