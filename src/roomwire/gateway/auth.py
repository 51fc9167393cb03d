"""Identity tokens and seat reservations: signed JWTs (HS256) issued and verified by the gateway."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import jwt
import msgspec

from roomwire.errors import ForbiddenError, ProtocolError, UnauthorizedError
from roomwire.protocol.values import check_value

_ALGORITHM = "HS256"
# RFC 7518 §3.2: an HS256 key has at least 32 bytes (PyJWT warns below). A shorter secret (16 to
# 31 characters are accepted) is stretched with PBKDF2 into a 32-byte key: it cannot gain entropy,
# but each guess at it from a captured token then costs 200,000 HMACs instead of one.
_KEY_BYTES = 32
_STRETCH_SALT = b"roomwire token key v1"
_STRETCH_ROUNDS = 200_000


def signing_key(secret: str) -> bytes:
    """The HS256 key for `secret`: itself when 32 bytes or longer, else stretched to 32 bytes."""
    raw = secret.encode()
    if len(raw) >= _KEY_BYTES:
        return raw
    return hashlib.pbkdf2_hmac("sha256", raw, _STRETCH_SALT, _STRETCH_ROUNDS, dklen=_KEY_BYTES)


class Identity(msgspec.Struct, frozen=True):
    """Who a request or connection is: a player id and the claims the app attached to it."""

    player_id: str
    claims: dict[str, Any] = {}


class Seat(msgspec.Struct, frozen=True):
    """Permission for one player to enter one room, until `expires_at`."""

    room: str
    player_id: str
    claims: dict[str, Any]
    expires_at: float
    rejoin: bool = False  # a `joined.rejoin` seat: continues a membership (see JoinInput.rejoin)


class TokenSigner:
    """Issues and verifies identity tokens and seats with one secret."""

    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise ValueError("the token secret must be at least 16 characters")
        self._secret = signing_key(secret)

    def issue_token(
        self, player_id: str, claims: dict[str, Any] | None = None, ttl_s: float = 86400.0
    ) -> str:
        """A bearer token for the lobby: identifies `player_id` for ttl_s seconds."""
        if not player_id or not isinstance(player_id, str):
            raise ValueError(f"player_id must be a non-empty string, got {player_id!r}")
        _check_claims(claims)
        payload = {"sub": player_id, "kind": "id", "claims": claims or {}, "exp": int(time.time() + ttl_s)}
        return jwt.encode(payload, self._secret, algorithm=_ALGORITHM)

    def verify_token(self, token: str) -> Identity:
        """The identity in a bearer token; raises UnauthorizedError when invalid or expired."""
        payload = self._decode(token, "id", "token")
        return Identity(payload["sub"], payload.get("claims") or {})

    def issue_seat(
        self, room: str, player_id: str, claims: dict[str, Any], ttl_s: float, *, rejoin: bool = False
    ) -> str:
        """A seat: lets `player_id` join `room` within ttl_s seconds; `rejoin`: a `joined.rejoin` seat."""
        _check_claims(claims)  # an app's authenticator may return any claims
        payload: dict[str, Any] = {
            "sub": player_id,
            "kind": "seat",
            "room": room,
            "claims": claims,
            "exp": int(time.time() + ttl_s),
        }
        if rejoin:
            payload["rejoin"] = True
        return jwt.encode(payload, self._secret, algorithm=_ALGORITHM)

    def verify_seat(self, token: str, room: str) -> Seat:
        """The seat in a token for `room`: ForbiddenError if for another room."""
        payload = self._decode(token, "seat", "seat")
        if payload.get("room") != room:
            raise ForbiddenError("this seat is for another room")
        return Seat(
            payload["room"],
            payload["sub"],
            payload.get("claims") or {},
            float(payload["exp"]),
            payload.get("rejoin") is True,
        )

    def _decode(self, token: str, kind: str, what: str) -> dict[str, Any]:
        if not isinstance(token, str) or not token:
            raise UnauthorizedError(f"missing {what}")
        try:
            payload: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]}
            )
        except jwt.ExpiredSignatureError as exc:
            raise UnauthorizedError(f"the {what} has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise UnauthorizedError(f"invalid {what}") from exc
        if payload.get("kind") != kind:
            raise UnauthorizedError(f"not a {what}")
        return payload


def _check_claims(claims: dict[str, Any] | None) -> None:
    """Claims go into the room's snapshot and the join hook: plain data every codec carries."""
    try:
        check_value(claims, "claims")
    except ProtocolError as exc:
        raise ValueError(f"{exc} (claims come from app.issue_token or @app.authenticate)") from None
