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
    TlsConfig,
)


class OpsAuthConfig(AuthConfig):
    """The ops API's tokens: this section's own may do everything (read every stored text,
    pin baselines, run jobs); `read` adds a token that may only read (GET /metrics,
    /api/v1/..., /reports/...), `metrics` one that may only scrape /metrics (Prometheus's),
    `feedback` one that may only send `POST /api/v1/feedback` (an app's, which then holds
    no token that reads stored texts).
    """

    read: AuthConfig | None = None
    metrics: AuthConfig | None = None
    feedback: AuthConfig | None = None

    @model_validator(mode="after")
    def _distinct(self) -> OpsAuthConfig:
        seen: dict[str, str] = {}
        for name, section in (("the admin token", self), ("read", self.read),
                              ("metrics", self.metrics), ("feedback", self.feedback)):
            if section is None:
                continue
            token = section.token()
            if token in seen:
                raise ValueError(f"{name}: the same token as {seen[token]}; a request must "
                                 "name one scope, got: one token for two scopes")
            seen[token] = name
        return self


# What a bound address answers to by default, besides itself. A wildcard bind is reached by
# names we cannot know (a Service, a container name), so it answers to any Host.
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_WILDCARDS = ("0.0.0.0", "::", "[::]", "")


def split_host(text: str) -> tuple[str, int | None]:
    """("name", port or None) from a Host header or an allowed_hosts entry, lower-cased;
    an IPv6 address keeps its brackets. ValueError if it is neither."""
    text = text.strip().lower()
    host, port = text, ""
    if text.startswith("["):
        end = text.find("]")
        host, port = text[:end + 1], text[end + 1:].removeprefix(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not _HOST.fullmatch(host) or not (port == "" or (port.isdigit() and int(port) < 65536)):
        raise ValueError(f"expected a host name, an IP address or [IPv6], with an optional "
                         f":port, got: {text!r}")
    return host, int(port) if port else None


_HOST = re.compile(r"\[[0-9a-z:.%]+\]|[a-z0-9_.-]+")  # [v6%zone] or a name


def _host_names(value: Any) -> Any:
    if isinstance(value, list | tuple):
        for item in value:
            if str(item) != "*":
                split_host(str(item))
        return tuple(str(item).strip().lower() for item in value)
    return value


class OpsConfig(Section):
    """The ops server.

    `allowed_hosts`: the Host names it answers to (others get 421, so a DNS-rebound name
    cannot reach it from a browser); a name without a port matches any port (SSH and
    kubectl port forwards change it). Default: the endpoint's host plus localhost, 127.0.0.1
    and [::1]; for a wildcard endpoint (0.0.0.0, [::]) any host ("*"). The probes
    /healthz and /readyz answer any Host.
    """

    endpoint: Endpoint = "127.0.0.1:9464"
    auth: OpsAuthConfig | None = None
    tls: TlsConfig | None = None
    allowed_hosts: Annotated[tuple[str, ...] | None, BeforeValidator(_host_names)] = None

    def hosts(self) -> tuple[str, ...]:
        """The Host names answered: `allowed_hosts`, or the default for the endpoint."""
        if self.allowed_hosts is not None:
            return self.allowed_hosts
        host = self.endpoint.rpartition(":")[0].lower()
        if host in _WILDCARDS:
            return ("*",)
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return tuple(dict.fromkeys((shown, *_LOOPBACK_NAMES)))


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
