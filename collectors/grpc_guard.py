"""What stands between a gRPC call and the receiver's work: the bearer token, checked before
anything of the request is read, and a deadline on the request message itself.

grpc's unary handlers read the whole request message before any code of ours runs, and the
server's concurrency limit counts a call from its first frame. So a client that opened
streams, announced large messages and sent one byte held a slot each, for as long as it
liked, before its token was even looked at: 64 such streams stopped all ingest. Here the
token is checked by an interceptor from the call's metadata, and a call without it ends
UNAUTHENTICATED at once, through a handler that reads nothing. The receiver's handlers take
the request as a stream, so that reading its one message can be given a deadline
(`message_timeout`): a stalled call ends DEADLINE_EXCEEDED and its slot is free again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from monitor.core.auth import bearer_matches
from monitor.core.tokens import TokenSource

Deny = Callable[[str], None]  # told the method of every call refused


class BearerInterceptor(aio.ServerInterceptor):  # type: ignore[misc]  # untyped base
    """Ends every call whose `authorization` metadata does not carry the token."""

    def __init__(self, token: TokenSource, on_denied: Deny) -> None:
        self._token = token
        self._on_denied = on_denied

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        metadata: Any = details.invocation_metadata or ()
        given = [value for key, value in metadata
                 if key == "authorization" and isinstance(value, str | bytes)]
        if bearer_matches(given, self._token.current()):
            return await continuation(details)
        self._on_denied(details.method)
        # A request-streaming handler: grpc calls it without reading the request first.
        return grpc.stream_unary_rpc_method_handler(_deny)


async def _deny(requests: AsyncIterator[bytes], context: aio.ServicerContext[Any, Any]) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")


class MessageMissing(Exception):
    """The call ended (half-closed) without sending a request message."""


class MessageLate(Exception):
    """The request message did not arrive within the deadline."""


async def first_message(requests: AsyncIterator[bytes], timeout_s: float) -> bytes:
    """The call's request message, once it has arrived whole.

    :raises MessageLate: not within `timeout_s`. :raises MessageMissing: none was sent.
    """
    try:
        return await asyncio.wait_for(anext(requests), timeout_s)
    except TimeoutError:
        raise MessageLate(f"request message not received within {timeout_s:g}s") from None
    except StopAsyncIteration:
        raise MessageMissing("the call carried no request message") from None
