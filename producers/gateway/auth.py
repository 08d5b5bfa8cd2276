"""Bearer tokens: which may publish (``write``) and which may only read (``read``).

Tokens come from the settings (a JSON list or a file, one token a line) and are kept only as
SHA-256 digests. :meth:`TokenTable.check` is the one decision every guarded route asks.

>>> table = TokenTable.from_tokens(write=["s3cret-w"], read=["s3cret-r"])
>>> table.check("Bearer s3cret-w", "write")[0], table.check("Bearer s3cret-r", "write")[0]
(200, 403)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from core.errors import ConfigError
from producers.gateway.settings import GatewayOptions, TokenSource

__all__ = ["REALM", "Permission", "TokenTable"]

REALM: Final = "lineage-gateway"

Permission = Literal["read", "write"]


def _token_list(source: TokenSource, setting: str) -> list[str]:
    if not isinstance(source, Path):
        tokens = [token.get_secret_value().strip() for token in source]
        if any(not token for token in tokens):
            raise ConfigError(f"{setting} holds an empty token", hint="remove it")
        return tokens
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(
            f"{setting} names {source}, which cannot be read: {exc.strerror}",
            hint=f'give a JSON list (\'["token"]\') or the path of a readable file in {setting}',
        ) from exc
    tokens = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not tokens:
        raise ConfigError(f"{setting} names {source}, which holds no token",
                          hint="one token a line; an empty file would lock everybody out")
    return tokens


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True)
class TokenTable:
    """Which bearer tokens may do what. Tokens are kept only as SHA-256 digests.

    >>> table = TokenTable.from_tokens(write=["s3cret-w"], read=["s3cret-r"])
    >>> table.check(None, "write")[0], table.check("Bearer nope", "read")[0]
    (401, 401)
    """

    scopes: Mapping[bytes, Permission] = field(default_factory=dict)

    @classmethod
    def from_tokens(cls, *, write: Sequence[str], read: Sequence[str] = ()) -> TokenTable:
        """The table of these tokens; a token in both lists is a :class:`ConfigError`."""
        both = set(write) & set(read)
        if both:
            raise ConfigError("a token is both a write token and a read-only token",
                              hint="list it in LINEAGE_GATEWAY__TOKENS or __READ_TOKENS, not both")
        scopes: dict[bytes, Permission] = {_digest(token): "read" for token in read}
        scopes.update({_digest(token): "write" for token in write})
        return cls(scopes)

    @classmethod
    def from_options(cls, options: GatewayOptions) -> TokenTable:
        """The table of the configured tokens (token files are read here)."""
        return cls.from_tokens(write=_token_list(options.tokens, "LINEAGE_GATEWAY__TOKENS"),
                               read=_token_list(options.read_tokens,
                                                "LINEAGE_GATEWAY__READ_TOKENS"))

    @property
    def enabled(self) -> bool:
        """Authentication is on when at least one token is configured."""
        return bool(self.scopes)

    def check(self, authorization: str | None, need: Permission) -> tuple[int, str]:
        """(200, principal), or (401 or 403, a ``WWW-Authenticate`` value) for ``need``.

        The principal is a short digest of the token (``-`` when authentication is off): it scopes
        idempotency keys, and it is safe to log.
        """
        if not self.enabled:
            return 200, "-"
        challenge = f'Bearer realm="{REALM}"'
        if not authorization:
            return 401, challenge
        scheme, _, token = authorization.strip().partition(" ")
        scope = self.scopes.get(_digest(token.strip())) if scheme.lower() == "bearer" else None
        if scope is None:
            return 401, f'{challenge}, error="invalid_token"'
        if need == "write" and scope != "write":
            return 403, f'{challenge}, error="insufficient_scope", scope="write"'
        return 200, _digest(token.strip()).hex()[:16]
