"""CORS for the OTLP/HTTP receiver, as the OpenTelemetry Collector's confighttp does it.

Browser exporters POST OTLP/JSON (or protobuf) from a page of another origin; the content type
makes every such request "non-simple", so the browser first sends a preflight OPTIONS. An
allowed origin is answered with Access-Control-Allow-Origin (the origin itself), the method
and the headers asked for; an origin not allowed gets no CORS headers at all, and the browser
blocks the export. Origins are exact (`https://app.example.com`), `*` for any, or hold one
`*` standing for any run of characters (`https://*.example.com`), as in the Collector.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# What every OTLP exporter sends, on top of the headers a config adds (the Collector's
# defaults, which are those of the rs/cors library it uses, plus Content-Encoding).
DEFAULT_HEADERS = ("accept", "content-type", "content-encoding", "origin", "x-requested-with")
METHODS = "POST"


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """Which origins may export from a browser, and with which request headers."""

    origins: tuple[str, ...] = ()
    extra_headers: tuple[str, ...] = ()
    max_age_s: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    def allows(self, origin: str) -> bool:
        origin = origin.lower()
        for pattern in self.origins:
            pattern = pattern.lower()
            if pattern == "*" or pattern == origin:
                return True
            prefix, star, suffix = pattern.partition("*")
            if star and len(origin) >= len(prefix) + len(suffix) and origin.startswith(
                    prefix) and origin.endswith(suffix):
                return True
        return False

    def preflight(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The CORS headers for a preflight request; empty when it is not allowed."""
        origin = headers.get("Origin")
        method = headers.get("Access-Control-Request-Method", "")
        if origin is None or not self.allows(origin) or method.upper() != METHODS:
            return {}
        asked = _header_names(headers.get("Access-Control-Request-Headers", ""))
        allowed = {*DEFAULT_HEADERS, *(h.lower() for h in self.extra_headers)}
        if not asked <= allowed:
            return {}
        answer = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": METHODS,
            "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        }
        if asked:
            answer["Access-Control-Allow-Headers"] = ", ".join(sorted(asked))
        if self.max_age_s:
            answer["Access-Control-Max-Age"] = str(self.max_age_s)
        return answer

    def actual(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The CORS headers for the export itself; empty for an origin not allowed."""
        origin = headers.get("Origin")
        if origin is None or not self.allows(origin):
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _header_names(value: str) -> set[str]:
    return {name.strip().lower() for name in value.split(",") if name.strip()}


def valid_origin(pattern: str) -> bool:
    """An origin the policy can match: `*`, or scheme://host[:port] with at most one `*`."""
    return pattern == "*" or ("://" in pattern and pattern.count("*") <= 1
                              and not pattern.endswith("/"))


def invalid_origins(patterns: Iterable[str]) -> list[str]:
    return [p for p in patterns if not valid_origin(p)]
