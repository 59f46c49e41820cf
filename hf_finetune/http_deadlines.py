"""Deadlines for a whole HTTP response, not for each read.

A time-out per read never fires against a server that sends a byte a second, so a stalled or hostile
endpoint could hang a push or a pull forever. Here a response's status line and headers must arrive
within ``seconds`` of the request's last byte, and its body must then keep an average of at least
``MIN_BODY_RATE`` bytes a second after a first ``seconds`` of grace (a large download at any usable speed
is never cut). Installed as the network backend of huggingface_hub's HTTP connection pool (HTTP/1.1).
"""

from __future__ import annotations

import time
from typing import Any

import httpcore2

MIN_BODY_RATE = 1024   # bytes a second, averaged over the whole body


class DeadlineStream(httpcore2.NetworkStream):
    """A connection whose reads of one response share its deadline; a new request (a write) starts anew."""

    def __init__(self, stream: Any, seconds: float):
        self._stream = stream
        self._seconds = seconds
        self._start: float | None = None     # when the request's last byte went out; None: idle
        self._head = b""                     # what arrived of the status line and headers
        self._body_start: float | None = None
        self._body_bytes = 0

    def _deadline(self) -> float | None:
        if self._start is None:
            return None
        if self._body_start is None:
            return self._start + self._seconds
        return self._body_start + self._seconds + self._body_bytes / MIN_BODY_RATE

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        deadline = self._deadline()
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise httpcore2.ReadTimeout(f"the response did not arrive within its deadline ({self._seconds:g} s "
                                            f"for the headers, then {MIN_BODY_RATE} bytes/s)")
            timeout = left if timeout is None else min(timeout, left)
        data = self._stream.read(max_bytes, timeout)
        self._count(data)
        return data

    def _count(self, data: bytes) -> None:
        if self._start is None:
            return
        if self._body_start is None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end >= 0:
                self._body_start = time.monotonic()
                self._body_bytes = len(self._head) - end - 4
                self._head = b""
        else:
            self._body_bytes += len(data)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout)
        self._start, self._head, self._body_start, self._body_bytes = time.monotonic(), b"", None, 0

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> "DeadlineStream":
        return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout), self._seconds)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore2.NetworkBackend):
    def __init__(self, backend: Any, seconds: float):
        self._backend = backend
        self._seconds = seconds

    def connect_tcp(self, *args: Any, **kwargs: Any) -> DeadlineStream:
        return DeadlineStream(self._backend.connect_tcp(*args, **kwargs), self._seconds)

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> DeadlineStream:
        return DeadlineStream(self._backend.connect_unix_socket(*args, **kwargs), self._seconds)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def install(client: Any, seconds: float) -> None:
    """Give ``client`` (an httpx2.Client on its default transport) response deadlines of ``seconds``."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    if pool is not None and hasattr(pool, "_network_backend"):
        pool._network_backend = DeadlineBackend(pool._network_backend, seconds)
