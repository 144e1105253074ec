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
from typing import Any, Iterator

try:
    from requests.adapters import HTTPAdapter
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
    _this_thread.deadline = deadline
    try:
        yield
    finally:
        _this_thread.deadline = None


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

    class DeadlineAdapter(HTTPAdapter):
        """requests' adapter whose connections (direct or through an HTTP proxy) keep the exchange's deadline."""

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = _POOLS

        def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **kwargs)
            if not proxy.lower().startswith("socks"):
                manager.pool_classes_by_scheme = _POOLS
            return manager
