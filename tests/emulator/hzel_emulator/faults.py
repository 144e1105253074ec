# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault injection and request accounting, as an ASGI wrapper around the API.

Faults are switched on and off at run time through ``/_emulator/faults``; the
emulator's own ``/_emulator/*`` endpoints are never faulted nor counted.
"""

import asyncio
import json
import math
import random
import re
import threading
import time
from collections import Counter, deque

KINDS = ("latency", "status", "html", "drop", "lost_reply", "reply", "echo_headers", "trickle", "late_commit")

STATUS_CODES = {
    429: ("RATE_LIMITED", "Too many requests"),
    500: ("INTERNAL_ERROR", "Internal server error"),
    502: ("BAD_GATEWAY", "Bad gateway"),
    503: ("SERVICE_UNAVAILABLE", "Service unavailable"),
    504: ("GATEWAY_TIMEOUT", "Gateway timeout"),
}

HTML_PAGE = (
    "<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>{status} Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


class ConnectionDropped(Exception):
    """Raised after the status line went out, so that the server closes the socket."""


DEFAULT_STATUS = {"html": 502, "reply": 200, "echo_headers": 500}


class FaultRule:
    def __init__(
        self,
        kind,
        method=None,
        path=None,
        count=None,
        status=None,
        retry_after=None,
        seconds=None,
        probability=1.0,
        body="",
        content_type="application/json",
    ):
        if kind not in KINDS:
            raise ValueError("kind must be one of %s" % ", ".join(KINDS))
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer or null")
        if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 < probability <= 1:
            raise ValueError("probability must be a number above 0 and at most 1")
        if not isinstance(body, str) or not isinstance(content_type, str):
            raise ValueError("body and content_type must be strings")
        self.kind = kind
        self.method = method.upper() if method else None
        self.path = path
        self._path_re = re.compile(path) if path else None
        self.remaining = count
        self.status = int(status) if status is not None else DEFAULT_STATUS.get(kind, 503)
        self.retry_after = retry_after
        self.seconds = float(seconds if seconds is not None else (1.0 if kind in ("trickle", "late_commit") else 0.0))
        self.probability = float(probability)
        self.body = body
        self.content_type = content_type

    def matches(self, method, path):
        if self.method and self.method != method:
            return False
        return self._path_re is None or self._path_re.search(path) is not None

    def as_dict(self):
        return {
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "count": self.remaining,
            "status": self.status,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
            "probability": self.probability,
            "body": self.body[:200],
            "content_type": self.content_type,
        }


class RateLimit:
    """429 with Retry-After beyond ``max_concurrent`` requests in flight or ``per_second`` in any second."""

    def __init__(self):
        self._lock = threading.Lock()
        self.configure()

    def configure(self, max_concurrent=None, per_second=None, retry_after=1):
        for name, value in (("max_concurrent", max_concurrent), ("per_second", per_second)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError("%s must be a positive integer or null" % name)
        if isinstance(retry_after, bool) or not isinstance(retry_after, (int, float)) or retry_after < 0:
            raise ValueError("retry_after must be a number >= 0")
        with self._lock:
            self.max_concurrent = max_concurrent
            self.per_second = per_second
            self.retry_after = retry_after
            self.in_flight = 0
            self.limited = 0
            self._recent = deque()

    def describe(self):
        with self._lock:
            return {
                "max_concurrent": self.max_concurrent,
                "per_second": self.per_second,
                "retry_after": self.retry_after,
                "limited": self.limited,
            }

    def admit(self):
        """True when the request may go on (the caller then calls release); False: answer 429."""
        now = time.monotonic()
        with self._lock:
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()
            if (self.max_concurrent is not None and self.in_flight >= self.max_concurrent) or (
                self.per_second is not None and len(self._recent) >= self.per_second
            ):
                self.limited += 1
                return False
            self.in_flight += 1
            self._recent.append(now)
            return True

    def release(self):
        with self._lock:
            self.in_flight -= 1


BUDGET_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_budget(text):
    """'100/10s' (or /10, /1m, /1h): (requests, seconds), for --budget."""
    match = BUDGET_RE.match(text or "")
    if not match:
        raise ValueError("a budget is REQUESTS/WINDOW, such as 100/10s, 5000/1h or 60/1m")
    requests, seconds = int(match.group(1)), float(match.group(2)) * UNIT_SECONDS[match.group(3)]
    if requests < 1 or seconds <= 0:
        raise ValueError("a budget needs at least 1 request in a window longer than 0 seconds")
    return requests, seconds


class Budget:
    """A request budget per credential: ``limit`` requests in a window of ``seconds`` from its first request.

    Every API request counts, whatever its answer; the window starts with a credential's first request
    (as GitHub's hourly budget does) and a new one with the first request after it ends. The credential
    is the bearer token, else the session cookie, else (no credential) the client's address.
    """

    def __init__(self, limit, seconds, x_headers=False, clock=time.time, quiet=False):
        self.limit = limit
        self.seconds = seconds
        self.x_headers = x_headers
        self.quiet = quiet
        # How many requests the budget refused (429), for GET /_emulator/stats.
        self.refused = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._windows = {}

    @staticmethod
    def credential(scope):
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"")
        if authorization:
            return b"bearer:" + authorization
        for part in headers.get(b"cookie", b"").split(b";"):
            name, _sep, value = part.strip().partition(b"=")
            if name == b"hzel_session":
                return b"session:" + value
        return ("client:%s" % ((scope.get("client") or ("-",))[0],)).encode()

    def spend(self, scope):
        """(admitted, the headers of the reply, seconds until the window ends)."""
        now = self._clock()
        key = self.credential(scope)
        with self._lock:
            if len(self._windows) > 10000:
                self._windows = {k: w for k, w in self._windows.items() if w[0] > now}
            ends, used = self._windows.get(key, (0.0, 0))
            if ends <= now:
                ends, used = now + self.seconds, 0
            admitted = used < self.limit
            if admitted:
                used += 1
            else:
                self.refused += 1
            self._windows[key] = (ends, used)
        remaining = self.limit - used
        wait = max(1, math.ceil(ends - now))
        headers = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(remaining).encode()),
            (b"ratelimit-reset", str(wait).encode()),
        ]
        if self.x_headers:
            headers += [
                (b"x-ratelimit-limit", str(self.limit).encode()),
                (b"x-ratelimit-remaining", str(remaining).encode()),
                (b"x-ratelimit-reset", str(math.ceil(ends)).encode()),
                (b"x-ratelimit-used", str(used).encode()),
                (b"x-ratelimit-resource", b"core"),
            ]
        if self.quiet:
            headers = []
        return admitted, headers, wait

    def reset(self):
        with self._lock:
            self._windows = {}
            self.refused = 0


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []
        self.requests = Counter()
        self.rate_limit = RateLimit()
        # Set from --budget: a request budget per credential, with the RateLimit headers on every reply.
        self.budget = None

    def set_rules(self, rules):
        parsed = [FaultRule(**rule) for rule in rules]
        with self._lock:
            self._rules = parsed

    def clear(self):
        with self._lock:
            self._rules = []

    def describe(self):
        with self._lock:
            return [rule.as_dict() for rule in self._rules]

    def take(self, method, path):
        """The first rule that applies to this request, spending one of its uses."""
        with self._lock:
            self.requests["%s %s" % (method, path)] += 1
            for rule in self._rules:
                if rule.matches(method, path):
                    if rule.probability < 1 and random.random() >= rule.probability:
                        continue
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining == 0:
                            self._rules.remove(rule)
                    return rule
        return None

    def stats(self):
        with self._lock:
            total = sum(self.requests.values())
            by_method = Counter()
            for key, value in self.requests.items():
                by_method[key.split(" ", 1)[0]] += value
            counted = {"total": total, "by_method": dict(by_method), "by_request": dict(self.requests)}
        if self.budget is not None:
            counted["budget_refused"] = self.budget.refused
        return counted

    def reset_stats(self):
        with self._lock:
            self.requests.clear()


async def _send_body(send, status, body, content_type, extra_headers=()):
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers.extend(extra_headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop(send):
    # The ASGI server closes the socket when the application fails after the
    # response has started: the client sees a reply cut short, as from a
    # proxy or load balancer that lost its upstream.
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
        }
    )
    raise ConnectionDropped()


def _with_headers(send, headers):
    """send, with headers added to the reply's start."""

    async def sending(message):
        if message["type"] == "http.response.start":
            message = dict(message, headers=list(message.get("headers", [])) + headers)
        await send(message)

    return sending


def _error_body(status, message):
    code = STATUS_CODES.get(status, ("ERROR", "Error"))[0]
    return json.dumps({"error": {"code": code, "message": message}}).encode()


async def _read_body(receive):
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


class FaultInjector:
    def __init__(self, app, faults):
        self.app = app
        self.faults = faults
        self._later = set()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        budget = self.faults.budget
        if budget is not None:
            admitted, headers, wait = budget.spend(scope)
            send = _with_headers(send, headers)
            if not admitted:
                self.faults.take(scope["method"], scope["path"])  # counted like any request
                await _send_body(
                    send,
                    429,
                    _error_body(429, "Request budget spent; it renews in %d seconds" % wait),
                    b"application/json",
                    [(b"retry-after", str(wait).encode())],
                )
                return
        limit = self.faults.rate_limit
        if not limit.admit():
            self.faults.take(scope["method"], scope["path"])  # counted like any request
            await _send_body(
                send,
                429,
                _error_body(429, "Too many requests"),
                b"application/json",
                [(b"retry-after", str(limit.retry_after).encode())],
            )
            return
        try:
            await self._serve(scope, receive, send)
        finally:
            limit.release()

    async def _serve(self, scope, receive, send):
        rule = self.faults.take(scope["method"], scope["path"])
        if rule is None:
            await self.app(scope, receive, send)
        elif rule.kind == "latency":
            await asyncio.sleep(rule.seconds)
            await self.app(scope, receive, send)
        elif rule.kind == "status":
            code, message = STATUS_CODES.get(rule.status, ("ERROR", "Error"))
            body = json.dumps({"error": {"code": code, "message": message}}).encode()
            extra = []
            retry_after = rule.retry_after if rule.retry_after is not None else (1 if rule.status == 429 else None)
            if retry_after is not None:
                extra.append((b"retry-after", str(retry_after).encode()))
            await _send_body(send, rule.status, body, b"application/json", extra)
        elif rule.kind == "html":
            await _send_body(send, rule.status, HTML_PAGE.format(status=rule.status).encode(), b"text/html")
        elif rule.kind == "reply":
            await _send_body(send, rule.status, rule.body.encode(), rule.content_type.encode())
        elif rule.kind == "echo_headers":
            # A careless upstream that repeats the request, headers and all, in its error.
            request = "%s %s %s" % (
                scope["method"],
                scope["path"],
                " ".join(
                    "%s: %s" % (name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]
                ),
            )
            if "html" in rule.content_type:
                body = ("<html><body><h1>%d Error</h1><pre>%s</pre></body></html>" % (rule.status, request)).encode()
            else:
                body = _error_body(rule.status, "upstream failed for request: " + request)
            await _send_body(send, rule.status, body, rule.content_type.encode())
        elif rule.kind == "trickle":
            await self._trickle(scope, receive, send, rule.seconds)
        elif rule.kind == "late_commit":
            body = await _read_body(receive)
            task = asyncio.get_running_loop().create_task(self._carry_out_later(scope, body, rule.seconds))
            self._later.add(task)
            task.add_done_callback(self._later.discard)
            await _drop(send)
        elif rule.kind == "drop":
            await _drop(send)
        else:  # lost_reply: the request is carried out, its answer never arrives

            async def swallow(message):
                return None

            await self.app(scope, receive, swallow)
            await _drop(send)

    async def _trickle(self, scope, receive, send, seconds):
        """The real reply, its body sent one byte every ``seconds``."""
        parts = []

        async def capture(message):
            parts.append(message)

        await self.app(scope, receive, capture)
        start = next(part for part in parts if part["type"] == "http.response.start")
        body = b"".join(part.get("body", b"") for part in parts if part["type"] == "http.response.body")

        # Once the body is read, the next message is the client going away: stop trickling then,
        # or an abandoned request would hold the server (and its shutdown) for the whole body.
        async def client_gone():
            while (await receive())["type"] != "http.disconnect":
                pass

        gone = asyncio.get_running_loop().create_task(client_gone())
        try:
            await send(start)
            for index in range(len(body)):
                if gone.done():
                    return
                await send({"type": "http.response.body", "body": body[index : index + 1], "more_body": True})
                await asyncio.sleep(seconds)
            await send({"type": "http.response.body", "body": b""})
        finally:
            gone.cancel()

    async def _carry_out_later(self, scope, body, seconds):
        """The connection was cut at once; the request takes effect ``seconds`` later (a create commits late)."""
        await asyncio.sleep(seconds)
        delivered = []

        async def replay():
            if not delivered:
                delivered.append(True)
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        async def swallow(message):
            return None

        await self.app(scope, replay, swallow)
