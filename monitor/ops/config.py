"""The ops server's and the metric push's config sections."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    model_validator,
)

from monitor.core.config import (
    AuthConfig,
    Duration,
    Endpoint,
    ExistingFile,
    Section,
)


class OpsConfig(Section):
    endpoint: Endpoint = "127.0.0.1:9464"
    auth: AuthConfig | None = None


def _collector_url(value: Any) -> str | None:
    if value is None or value == "":
        return None  # no push
    url = str(value).strip()
    try:
        parts = urlsplit(url)
        valid = (parts.scheme in ("http", "https") and bool(parts.hostname)
                 and not parts.query and not parts.fragment and parts.port != 0)
    except ValueError:  # a port that is not a number or out of range
        valid = False
    if not valid:
        raise ValueError(f"expected a URL like http://otel-collector:4318, got: {value!r}")
    return url


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _header_names(value: Any) -> Any:
    """Header names lower-cased (gRPC metadata keys must be), each checked."""
    if not isinstance(value, dict):
        return value  # validation names the error
    for key, text in value.items():
        if not _HEADER_NAME.match(str(key)):
            raise ValueError(f"expected header names like authorization, got: {key!r}")
        if isinstance(text, str) and ("\n" in text or "\r" in text):
            raise ValueError(f"{key}: a header value is one line, got: {text!r}")
    return {str(key).lower(): text for key, text in value.items()}


class ClientTlsConfig(Section):
    """What the push trusts (`ca_file`; default the system's roots) and, for mutual TLS, the
    certificate it presents."""

    ca_file: ExistingFile | None = None
    cert_file: ExistingFile | None = None
    key_file: ExistingFile | None = None

    @model_validator(mode="after")
    def _pair(self) -> ClientTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            alone = "cert_file" if self.cert_file else "key_file"
            raise ValueError(f"set cert_file and key_file together, got: {alone} alone")
        return self


class OtlpPushConfig(Section):
    """Pushing what /metrics shows to an OTLP collector; off while `endpoint` is unset.

    The keys are the OTEL_EXPORTER_OTLP_* ones: for http/protobuf an endpoint without a path
    gets /v1/metrics; https:// means TLS for both protocols.
    """

    endpoint: Annotated[str | None, BeforeValidator(_collector_url)] = None
    protocol: Literal["grpc", "http/protobuf"] = "http/protobuf"
    interval: Duration = 60.0  # OTEL_METRIC_EXPORT_INTERVAL
    timeout: Duration = 10.0  # per export, retries included
    headers: Annotated[dict[str, str], BeforeValidator(_header_names)] = Field(
        default_factory=dict)
    tls: ClientTlsConfig | None = None

    @model_validator(mode="after")
    def _fits_protocol(self) -> OtlpPushConfig:
        if self.endpoint is None:
            return self
        parts = urlsplit(self.endpoint)
        if self.protocol == "grpc" and parts.path not in ("", "/"):
            raise ValueError(f"endpoint: a gRPC endpoint has no path, got: {self.endpoint!r}")
        if self.tls is not None and parts.scheme != "https":
            raise ValueError(f"tls: needs an https:// endpoint, got: {self.endpoint!r}")
        return self


class MetricsConfig(Section):
    otlp: OtlpPushConfig = OtlpPushConfig()
    # label sets per exported family; past it, one otel_metric_overflow="true" series
    cardinality_limit: int = Field(default=2_000, ge=1, le=1_000_000)
