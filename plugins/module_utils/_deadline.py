# The deadline of one exchange of the hzel API client: every send and receive ends by it, without a thread.
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""A total deadline per exchange (connect, send, every read, the whole body) for requests.

requests' timeout bounds each socket operation, so a server that trickles a
byte at a time would hold a request for ever. Here the connections of the
adapter wrap their socket so that, before each send and each receive, the
socket's timeout is set to the time left until the deadline of the exchange
the calling thread is in (``exchange_deadline``). No thread watches a request,
and a request given up has its connection closed at once by the transport.
Outside ``exchange_deadline`` the sockets behave as requests made them.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Tuple

try:
    from requests.adapters import HTTPAdapter
    from requests.models import Response
    from requests.structures import CaseInsensitiveDict
    from requests.utils import get_encoding_from_headers
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
except ImportError:
    HAS_REQUESTS = False
else:
    HAS_REQUESTS = True

# The deadline of the exchange the current thread is in (time.monotonic()), read by its socket.
_this_thread = threading.local()


@contextmanager
def exchange_deadline(deadline: float) -> Iterator[None]:
    """Every socket operation of this thread inside the block ends by ``deadline`` (time.monotonic())."""
    set_deadline(deadline)
    try:
        yield
    finally:
        set_deadline(None)


def set_deadline(deadline: Optional[float]) -> None:
    """What ``exchange_deadline`` does on entry (a deadline) and on exit (None), without a generator per exchange."""
    _this_thread.deadline = deadline


class _DeadlineSocket:
    """A connected socket whose every send and receive ends by the deadline of the exchange using it.

    Before each send and each receive the socket's timeout is set to the time
    left, so a server that trickles its reply a byte at a time cannot hold a
    request past ``api_timeout``: no thread watches the request, and the
    connection is closed as soon as the deadline passes.
    """

    __slots__ = ("_sock",)

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def _time_left(self) -> None:
        deadline = getattr(_this_thread, "deadline", None)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("api_timeout")
            self._sock.settimeout(left)

    def recv_into(self, *args: Any) -> Any:
        self._time_left()
        return self._sock.recv_into(*args)

    def recv(self, *args: Any) -> Any:
        self._time_left()
        return self._sock.recv(*args)

    def sendall(self, *args: Any) -> Any:
        self._time_left()
        return self._sock.sendall(*args)

    def send(self, *args: Any) -> Any:
        self._time_left()
        return self._sock.send(*args)

    def makefile(self, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode != "rb" or not isinstance(self._sock, socket.socket):
            return self._sock.makefile(mode, *args, **kwargs)
        # What socket.makefile("rb") does, reading through this object.
        self._sock._io_refs += 1  # type: ignore[attr-defined]
        return io.BufferedReader(socket.SocketIO(self, "rb"))  # type: ignore[arg-type]


if HAS_REQUESTS:

    class _DeadlineTunnel:
        """The CONNECT exchange with an HTTP proxy (inside connect()) keeps the deadline too.

        Only while the tunnel is set up: TLS is then wrapped around the plain socket, as usual.
        """

        sock: Any

        def _tunnel(self) -> None:
            plain = self.sock
            self.sock = _DeadlineSocket(plain)
            try:
                super()._tunnel()  # type: ignore[misc]
            finally:
                self.sock = plain

    class _DeadlineHTTPConnection(_DeadlineTunnel, HTTPConnection):
        def connect(self) -> None:
            super().connect()
            self.sock = _DeadlineSocket(self.sock)

    class _DeadlineHTTPSConnection(_DeadlineTunnel, HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            self.sock = _DeadlineSocket(self.sock)

    class _DeadlineHTTPPool(HTTPConnectionPool):
        ConnectionCls = _DeadlineHTTPConnection

    class _DeadlineHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = _DeadlineHTTPSConnection

    _POOLS = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}

    # How many (origin, TLS settings, proxies) an adapter remembers the pool of; one transport uses one.
    _POOL_MEMO_MAX = 8

    def _origin(url: str) -> Optional[str]:
        """scheme://host[:port] of a URL with no user info or fragment; None for any other (left to requests)."""
        if "#" in url or "@" in url:
            return None
        start = url.find("://")
        if start < 0:
            return None
        end = url.find("/", start + 3)
        origin = url if end < 0 else url[:end]
        return None if "?" in origin else origin

    def _memo_key(url: Any, verify: Any, cert: Any, proxies: Any) -> Optional[Tuple[Any, ...]]:
        origin = _origin(url) if isinstance(url, str) else None
        if origin is None:
            return None
        try:
            key = (origin, verify, cert, tuple(sorted(proxies.items())) if proxies else ())
            hash(key)
        except TypeError:
            return None
        return key

    def _remember(memo: Dict[Tuple[Any, ...], Any], key: Tuple[Any, ...], value: Any) -> None:
        if len(memo) >= _POOL_MEMO_MAX:
            memo.clear()
        memo[key] = value

    class DeadlineAdapter(HTTPAdapter):
        """requests' adapter whose connections (direct or through an HTTP proxy) keep the exchange's deadline.

        What requests works out again for every request of one origin (the pool, with its TLS settings checked,
        and whether the request line names the path or the whole URL) is worked out once per origin, TLS
        settings and proxies, and remembered until the adapter is closed; and no cookie is read from a reply.
        The pool is looked up again once the pool manager has closed it.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # (origin, verify, cert, proxies) -> pool; (pool id, verify, cert) -> pool checked;
            # (origin, proxies) -> whether the request line is the whole URL (through an HTTP proxy).
            self._pools: Dict[Tuple[Any, ...], Any] = {}
            self._checked: Dict[Tuple[Any, ...], Any] = {}
            self._whole_url: Dict[Tuple[Any, ...], bool] = {}
            super().__init__(*args, **kwargs)

        def get_connection_with_tls_context(
            self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
        ) -> Any:
            key = _memo_key(request.url, verify, cert, proxies)
            pool = self._pools.get(key) if key is not None else None
            if pool is not None and pool.pool is not None:
                return pool
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            if key is not None:
                _remember(self._pools, key, pool)
            return pool

        def cert_verify(self, conn: Any, url: Any, verify: Any, cert: Any) -> None:
            try:
                key: Optional[Tuple[Any, ...]] = (id(conn), verify, cert)
                hash(key)
            except TypeError:
                key = None
            if key is not None and self._checked.get(key) is conn and getattr(conn, "pool", None) is not None:
                return
            super().cert_verify(conn, url, verify, cert)
            if key is not None:
                _remember(self._checked, key, conn)

        def request_url(self, request: Any, proxies: Any) -> str:
            url = request.url
            key = _memo_key(url, None, None, proxies)
            whole = self._whole_url.get(key) if key is not None else None
            if whole is False and key is not None:
                return url[len(key[0]) :] or "/"
            line = super().request_url(request, proxies)
            if key is not None and whole is None:
                _remember(self._whole_url, key, line != request.path_url)
            return line

        def build_response(self, req: Any, resp: Any) -> Any:
            """requests' response, without reading cookies: the API sets none and nothing here would send them."""
            response = Response()
            response.status_code = resp.status
            response.headers = CaseInsensitiveDict(getattr(resp, "headers", {}))
            response.encoding = get_encoding_from_headers(response.headers)
            response.raw = resp
            response.reason = resp.reason
            response.url = req.url.decode("utf-8") if isinstance(req.url, bytes) else req.url
            response.request = req
            response.connection = self
            return response

        def close(self) -> None:
            self._pools.clear()
            self._checked.clear()
            self._whole_url.clear()
            super().close()

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = _POOLS

        def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **kwargs)
            if not proxy.lower().startswith("socks"):
                manager.pool_classes_by_scheme = _POOLS
            return manager
