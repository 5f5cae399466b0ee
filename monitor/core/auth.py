"""Bearer-token checks shared by every listener (the receivers and the ops server).

One rule for all of them: exactly one `Authorization` value, the scheme `Bearer` in any case
(RFC 7235 makes auth schemes case-insensitive), and credentials equal to the token, compared
in constant time. Two values are refused rather than one of them picked: a proxy that adds
its own must not decide which one is checked.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

SCHEME = "bearer"


def bearer_matches(values: Sequence[str | bytes], token: str) -> bool:
    """Whether the request's `Authorization` values carry exactly `token`.

    :param values: every `Authorization` value the request carried (header or gRPC metadata).
    :param token: the configured token; an empty one matches nothing.
    """
    if len(values) != 1 or not token:
        return False
    value = values[0]
    given = value.encode("latin-1", "replace") if isinstance(value, str) else value
    scheme, _, credentials = given.strip().partition(b" ")
    if scheme.lower() != SCHEME.encode():
        return False
    return hmac.compare_digest(credentials.strip(), token.encode())
