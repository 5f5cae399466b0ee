"""The receivers' and the ingest queue's config sections."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
)

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


class GrpcReceiverConfig(ReceiverConfig):
    endpoint: Endpoint = "127.0.0.1:4317"


class HttpReceiverConfig(ReceiverConfig):
    endpoint: Endpoint = "127.0.0.1:4318"
    cors_allowed_origins: tuple[str, ...] = ()


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
    max_attribute_chars: int = Field(default=65_536, ge=256)  # longer texts are truncated
    # calls starting further past the daemon's clock are refused alone (partial success)
    max_start_ahead: Duration = 3600.0
    # processes that decode and extract large request bodies; "auto" = one per usable core,
    # at most 4; 0 = extract on threads of the daemon (one core's worth, under its GIL)
    workers: Annotated[int | Literal["auto"], BeforeValidator(_workers)] = "auto"
