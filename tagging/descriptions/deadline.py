"""HTTP requests with a total deadline.

``urllib``'s ``timeout`` bounds each socket operation, not the request: a server that trickles a byte
just inside it holds a read for ever. :func:`post_with_deadline` opens the request through ``urllib``
(proxies and TLS as usual) on connections whose sockets a timer shuts when the deadline passes, so
every read still blocked then ends at once; the request then fails with ``TimeoutError``.
"""
from __future__ import annotations

import http.client
import socket
import threading
import urllib.error
import urllib.request


class _Deadline:
    """Shuts the sockets it watches when ``seconds`` have passed (or at once if they already have)."""

    def __init__(self, seconds: float) -> None:
        self.expired = threading.Event()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _expire(self) -> None:
        with self._lock:
            self.expired.set()
            for s in self._socks:
                self._shut(s)

    def watch(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._socks.append(sock)
            if self.expired.is_set():
                self._shut(sock)
        return sock

    def cancel(self) -> None:
        self._timer.cancel()


def _watched(base: type, deadline: _Deadline):
    """``base`` (an ``http.client`` connection class) whose raw socket ``deadline`` watches."""

    class Watched(base):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            create = self._create_connection  # what connect() opens the raw socket with, before any TLS

            self._create_connection = lambda *a, **k: deadline.watch(create(*a, **k))

    return Watched


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req):
        return self.do_open(_watched(http.client.HTTPConnection, self.deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req):
        return self.do_open(_watched(http.client.HTTPSConnection, self.deadline), req, context=self._context)


def post_with_deadline(url: str, body: bytes, headers: dict[str, str], *, deadline: float,
                       error_bytes: int = 200) -> tuple[int, bytes]:
    """POST ``body`` and return ``(status, response body)``, all within ``deadline`` seconds.

    An HTTP error status is returned, not raised (with at most ``error_bytes`` of its body).
    Raises ``TimeoutError`` when the deadline passes, ``OSError`` / ``http.client.HTTPException`` when
    the connection fails or the answer is cut short.
    """
    watch = _Deadline(deadline)
    opener = urllib.request.build_opener(_HTTPHandler(watch), _HTTPSHandler(watch))
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        try:
            with opener.open(req, timeout=deadline) as resp:
                status, data = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read(error_bytes)
    except (OSError, http.client.HTTPException):
        if watch.expired.is_set():
            raise TimeoutError(f"no complete answer within {deadline:g}s") from None
        raise
    finally:
        watch.cancel()
    if watch.expired.is_set():  # the shut socket may read as a clean end of a body without a length
        raise TimeoutError(f"no complete answer within {deadline:g}s")
    return status, data

