"""The receivers' and the ingest queue's config sections."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
)

from collectors.cors import invalid_origins
from monitor.core.config import (
    AuthConfig,
    Duration,
    Endpoint,
    Section,
    Size,
    TlsConfig,
)


class ReceiverConfig(Section):
    enabled: bool = True
    endpoint: Endpoint
    max_body_size: Size = 64 << 20  # after decompression, as the OTLP spec allows
    tls: TlsConfig | None = None
    auth: AuthConfig | None = None
    # A connection must send its request's head (gRPC: finish its handshake) this soon after
    # opening, or after its first byte; and may sit idle between requests this long.
    header_timeout: Duration = 10.0
    idle_timeout: Duration = 60.0
    max_connections: int = Field(default=512, ge=1)  # open at once; past it refused


class GrpcReceiverConfig(ReceiverConfig):
    endpoint: Endpoint = "127.0.0.1:4317"
    # a call's request message must have arrived this soon after the call began, or the call
    # ends DEADLINE_EXCEEDED (gRPC shows no partial progress, so no rate: a whole deadline)
    message_timeout: Duration = 30.0
    max_concurrent_streams: int = Field(default=32, ge=1)  # per connection (HTTP/2 SETTINGS)
    max_concurrent_rpcs: int = Field(default=1024, ge=1)  # over all connections


class HttpReceiverConfig(ReceiverConfig):
    endpoint: Endpoint = "127.0.0.1:4318"
    # after body_timeout a body must average body_min_rate bytes a second, or it is cut (408)
    body_timeout: Duration = 10.0
    body_min_rate: Size = 16 << 10
    cors_allowed_origins: tuple[str, ...] = ()  # exact, "*", or one "*" wildcard each
    cors_allowed_headers: tuple[str, ...] = ()  # on top of Content-Type, Content-Encoding...
    cors_max_age: int = Field(default=0, ge=0)  # seconds a browser may cache a preflight

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        bad = invalid_origins(origins)
        if bad:
            raise ValueError(f"expected origins like https://app.example.com, "
                             f"https://*.example.com or *, got: {bad[0]!r}")
        return origins


class ReceiversConfig(Section):
    otlp_grpc: GrpcReceiverConfig = GrpcReceiverConfig()
    otlp_http: HttpReceiverConfig = HttpReceiverConfig()


def _workers(value: Any) -> int | str:
    if value == "auto":
        return "auto"
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 64:
        return value
    raise ValueError(f"expected 'auto' or a number of processes from 0 to 64, got: {value!r}")


class IngestConfig(Section):
    """The bounded queue between the receivers and the store."""

    queue_max_items: int = Field(default=50_000, ge=1)  # calls + content events waiting
    queue_max_bytes: Size = 128 << 20  # of text in them (one call may hold 200 KB of it)
    max_inflight_bytes: Size = 256 << 20  # request bodies being decoded at once
    retry_after: Duration = 1.0  # what an overloaded receiver tells the exporter
    commit_max_items: int = Field(default=20_000, ge=1)  # largest group commit
    join_window: Duration = 3600.0  # how long a log event waits for its span
    # evaluations waiting for their call at most; past it new ones are refused (503 to feedback)
    max_pending_evaluations: int = Field(default=100_000, ge=1)
    max_attribute_chars: int = Field(default=65_536, ge=256)  # longer texts are truncated
    # calls starting further past the daemon's clock are refused alone (partial success)
    max_start_ahead: Duration = 3600.0
    # processes that decode and extract large request bodies; "auto" = one per usable core,
    # at most 4; 0 = extract on threads of the daemon (one core's worth, under its GIL)
    workers: Annotated[int | Literal["auto"], BeforeValidator(_workers)] = "auto"
    # a span (else resource) attribute stored as each call's `variant`, e.g.
    # "prompt.template.version": a second axis beside service.version that `driftwatch
    # compare` and the canary split calls by; unset: none is read
    variant_attribute: str | None = Field(default=None, min_length=1, max_length=256)
