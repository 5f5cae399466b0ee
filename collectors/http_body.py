"""Reading an OTLP/HTTP request body: at a minimum rate, within the size cap, and within the
receivers' shared memory budget, counted by the bytes that actually arrived.

A Content-Length header is only a promise. Reserving the budget by what it announces let five
connections that announce 64 MiB and send one byte take the whole 256 MiB budget and turn
every other export away with 503; so bytes are reserved as they arrive, and a body must keep
arriving: after a grace of `body_timeout` it must average `body_min_rate` bytes a second, or
the request is answered 408 and its connection closed. Decompression happens here too, with
the cap enforced while inflating, so a gzip bomb is refused without being inflated.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass

from aiohttp import web

from monitor.core.errors import BadRequest, Overloaded, TooLarge


class SlowBody(Exception):
    """The body arrived slower than the minimum rate (or stopped): 408, connection closed."""


class BodyBudget:
    """Bytes of request bodies held at once, over all requests of a receiver. The first
    holder may pass the limit (one body at the cap must always be possible); past it, others
    are refused."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    def take(self, n: int) -> bool:
        if self.used and self.used + n > self.limit:
            return False
        self.used += n
        return True

    def give(self, n: int) -> None:
        self.used -= n


@dataclass(frozen=True, slots=True)
class BodyLimits:
    cap: int  # bytes, on either side of decompression
    grace_s: float  # before the minimum rate applies
    min_rate: int  # bytes per second, averaged from the start of the body
    retry_after_s: float  # told to a client the budget turns away


class BodyReader:
    """Reads one request's body, holding its share of the budget until `release()`."""

    def __init__(self, budget: BodyBudget, limits: BodyLimits) -> None:
        self._budget = budget
        self._limits = limits
        self.held = 0

    def release(self) -> None:
        self._budget.give(self.held)
        self.held = 0

    async def read(self, request: web.Request) -> bytes:
        """The body, decompressed.

        :raises TooLarge: over the cap. :raises Overloaded: the budget is spent.
        :raises SlowBody: slower than the minimum rate. :raises BadRequest: an unknown
            Content-Encoding, or corrupt compressed data.
        """
        cap = self._limits.cap
        if request.content_length is not None and request.content_length > cap:
            raise TooLarge(f"body of {request.content_length} bytes is over the {cap}-byte cap")
        raw = await self._receive(request)
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("", "identity"):
            return raw
        if encoding in ("gzip", "x-gzip"):
            wbits = zlib.MAX_WBITS | 16
        elif encoding == "deflate":
            # "deflate" is zlib-wrapped by the spec (and the Python exporter), raw in the wild.
            wbits = zlib.MAX_WBITS if raw[:1] == b"\x78" else -zlib.MAX_WBITS
        else:
            raise BadRequest(
                f"unsupported Content-Encoding {encoding!r}; send gzip, deflate or none")
        body = await asyncio.to_thread(inflate, raw, wbits, cap)
        # Already in memory, so held whatever the budget says: the next body is refused.
        self._budget.used += len(body)
        self.held += len(body)
        return body

    async def _receive(self, request: web.Request) -> bytes:
        limits = self._limits
        loop = asyncio.get_running_loop()
        began = loop.time()
        chunks: list[bytes] = []
        size = 0
        while True:
            wait_s = began + limits.grace_s + size / limits.min_rate - loop.time()
            try:
                chunk = await asyncio.wait_for(request.content.readany(), max(wait_s, 0.0))
            except TimeoutError:
                raise SlowBody(
                    f"body slower than {limits.min_rate} bytes/s after "
                    f"{limits.grace_s:g}s ({size} bytes received)") from None
            if not chunk:
                break
            size += len(chunk)
            if size > limits.cap:
                raise TooLarge(f"body is over the {limits.cap}-byte cap")
            if not self._budget.take(len(chunk)):
                raise Overloaded("too many bodies in flight; retry later", limits.retry_after_s)
            self.held += len(chunk)
            # Chunks as the socket delivered them, joined once: no growing buffer.
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def inflate(data: bytes, wbits: int, cap: int) -> bytes:
    """Decompress at most cap + 1 bytes: a bomb is refused after inflating just past the cap."""
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, cap + 1)
        if len(out) > cap or inflater.unconsumed_tail:
            raise TooLarge(f"body inflates past the {cap}-byte cap")
        out += inflater.flush()
    except zlib.error as exc:
        raise BadRequest(f"body is not valid compressed data: {exc}") from None
    if not inflater.eof:
        raise BadRequest("compressed body is truncated")
    if len(out) > cap:
        raise TooLarge(f"body inflates past the {cap}-byte cap")
    return out
