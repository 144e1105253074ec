# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault injection and request accounting, as an ASGI wrapper around the API.

Faults are switched on and off at run time through ``/_emulator/faults``; the
emulator's own ``/_emulator/*`` endpoints are never faulted nor counted.
"""

import asyncio
import json
import re
import threading
from collections import Counter

KINDS = ("latency", "status", "html", "drop", "lost_reply")

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


class FaultRule:
    def __init__(self, kind, method=None, path=None, count=None, status=None, retry_after=None, seconds=0.0):
        if kind not in KINDS:
            raise ValueError("kind must be one of %s" % ", ".join(KINDS))
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer or null")
        self.kind = kind
        self.method = method.upper() if method else None
        self.path = path
        self._path_re = re.compile(path) if path else None
        self.remaining = count
        self.status = int(status) if status is not None else (502 if kind == "html" else 503)
        self.retry_after = retry_after
        self.seconds = float(seconds)

    def matches(self, method, path):
        if self.method and self.method != method:
            return False
        return self._path_re is None or self._path_re.search(path) is not None

    def as_dict(self):
        return {
            "kind": self.kind, "method": self.method, "path": self.path, "count": self.remaining,
            "status": self.status, "retry_after": self.retry_after, "seconds": self.seconds,
        }


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []
        self.requests = Counter()

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
            return {"total": total, "by_method": dict(by_method), "by_request": dict(self.requests)}

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
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
    raise ConnectionDropped()


class FaultInjector:
    def __init__(self, app, faults):
        self.app = app
        self.faults = faults

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
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
        elif rule.kind == "drop":
            await _drop(send)
        else:  # lost_reply: the request is carried out, its answer never arrives
            async def swallow(message):
                return None
            await self.app(scope, receive, swallow)
            await _drop(send)
