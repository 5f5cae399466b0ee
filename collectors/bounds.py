"""Range checks on the calls extraction made, before any of them reaches the store.

Extraction reads numbers tolerantly: a count is any non-negative int64, a time any uint64 the
span carries. The store and the detectors need narrower ranges: SQLite refuses an integer past
int64 (input plus output tokens can pass it when each alone does not) and fails the whole
group commit with it, and a call dated in 2200 outlives retention and skews every latency
percentile of its segment. So each call is checked here, where a request's calls are gathered,
and one out of range is refused alone: counted, named in the request's partial success, and
never written, while the rest of its request is stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from collectors.extract import Extracted
from monitor.core.records import LLMCall

# No model reads or writes a billion tokens in one call (the largest context windows hold ten
# million); below this bound even a billion calls' sum fits SQLite's int64 SUM().
MAX_TOKENS = 1_000_000_000
# Longer than any LLM call, batch APIs' 24-hour window included; percentiles stay meaningful.
MAX_DURATION_S = 7 * 86_400.0


@dataclass(frozen=True, slots=True)
class CallBounds:
    """What a stored call may hold. `max_start_ahead_s`: how far past the daemon's clock a
    call may start (exporters' clocks drift; a call from the future is a broken clock)."""

    max_start_ahead_s: float = 3600.0

    def violation(self, call: LLMCall, now_ns: int) -> str | None:
        """Why the call cannot be stored, naming the field and the value; None when it can."""
        latest = now_ns + int(self.max_start_ahead_s * 1e9)
        if call.start_ns > latest:
            return (f"start_time_unix_nano: {call.start_ns} is more than "
                    f"{self.max_start_ahead_s:g}s after the receiver's clock ({now_ns})")
        if not 0 <= call.duration_s <= MAX_DURATION_S:
            return f"duration: {call.duration_s:g}s is out of range (0 to {MAX_DURATION_S:g}s)"
        ttft = call.ttft_s
        if ttft is not None and not (math.isfinite(ttft) and 0 <= ttft <= MAX_DURATION_S):
            return (f"time to first token: {ttft:g}s is out of range "
                    f"(0 to {MAX_DURATION_S:g}s)")
        for name in ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens"):
            value = getattr(call, name)
            if value is not None and not 0 <= value <= MAX_TOKENS:
                return f"{name}: {value} is out of range (0 to {MAX_TOKENS})"
        return None

    def apply(self, found: Extracted, now_ns: int) -> int:
        """Drop the calls out of range from `found`, each counted as a rejected span with its
        reason; returns how many were dropped."""
        kept: list[LLMCall] = []
        dropped = 0
        for call in found.calls:
            reason = self.violation(call, now_ns)
            if reason is None:
                kept.append(call)
                continue
            dropped += 1
            found.reject(f"span {call.span_id}: {reason}")
        if dropped:
            found.calls[:] = kept
            if "llm" in found.kinds:
                found.kinds["llm"] = max(0, found.kinds["llm"] - dropped)
        return dropped
