"""End users of the website widget, whom a browser cannot be trusted to name.

A publishable key (scope `public`) never takes the request's `user_id` as it is. The end user is
either
- an anonymous **visitor**: the server issues `{visitor_token, user_id}` (the token is the user id,
  the partner and the time of issue, signed with HMAC-SHA256 under `ALIM_VISITOR_SECRET`); the
  widget keeps the token and sends it as `X-Visitor-Token`;
- or a partner's **logged-in user**: the partner's server computes
  `user_hash = HMAC-SHA256(identity secret of the key, user_id)` (hex) and its page hands both to
  the widget, which sends `X-User-Id` and `X-User-Hash`.

Pure functions; comparisons are constant-time and nothing here logs a token or a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets

from alim.errors import Unauthorized

VISITOR_PREFIX = "v-"
TOKEN_VERSION = "v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def issue_visitor(secret: str, partner: str, now: float) -> tuple[str, str]:
    """A new anonymous visitor of `partner`'s widget: (visitor token, user id)."""
    user_id = VISITOR_PREFIX + secrets.token_urlsafe(16)
    body = _b64(json.dumps({"p": partner, "u": user_id, "t": int(now)}).encode())
    payload = f"{TOKEN_VERSION}.{body}"
    return f"{payload}.{_sign(secret, payload)}", user_id


def verify_visitor(secret: str, partner: str, token: str, now: float, max_age: float) -> str:
    """The user id a visitor token names, if the server signed it for `partner` no more than
    `max_age` seconds ago; else 401 `invalid_visitor_token`."""
    bad = Unauthorized("the visitor token is not valid", code="invalid_visitor_token")
    version, _, rest = token.partition(".")
    body, _, signature = rest.partition(".")
    if version != TOKEN_VERSION or not body or not signature:
        raise bad
    if not hmac.compare_digest(signature, _sign(secret, f"{version}.{body}")):
        raise bad
    try:
        claims = json.loads(_unb64(body))
        user_id, issued, owner = str(claims["u"]), float(claims["t"]), str(claims["p"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise bad from exc
    if not hmac.compare_digest(owner, partner) or not user_id.startswith(VISITOR_PREFIX):
        raise bad
    if now - issued > max_age or issued > now + 300:
        raise Unauthorized("the visitor token has expired", code="invalid_visitor_token")
    return user_id


def user_hash(identity_secret: str, user_id: str) -> str:
    """What the partner's server computes for its logged-in user (hex HMAC-SHA256)."""
    return hmac.new(identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_user_hash(identity_secret: str | None, user_id: str, given: str) -> str:
    """`user_id` when `given` is its hash under the key's identity secret; else 401
    `invalid_user_hash`. Visitor ids cannot be claimed this way, nor ids that a request's
    `user_id` could not carry (empty, over 128 characters, control characters)."""
    if (
        identity_secret is None
        or not 0 < len(user_id) <= 128
        or not user_id.isprintable()
        or user_id.startswith(VISITOR_PREFIX)
        or not hmac.compare_digest(user_hash(identity_secret, user_id), given.strip().lower())
    ):
        raise Unauthorized("user_hash does not match user_id", code="invalid_user_hash")
    return user_id
