"""Dashboard sessions carry their token's scope, never the token, and end with the token."""

import base64
import json

from mediaflow.config import Secret
from mediaflow.ops.ui.session import (
    SESSION_TTL_S,
    new_session,
    read_session,
    session_key,
    still_declared,
    token_digest,
)
from mediaflow.processors.projection.tokens import ApiTokens, Scope

SIGNING = session_key(Secret("admin-token-0123456789"))
ACME = b"acme-token-0123456789abc"
ACME_SCOPE = Scope("acme-platform", "acme")
TOKENS = ApiTokens(((token_digest(ACME), ACME_SCOPE),))


def test_a_session_carries_the_scope_and_not_the_token():
    cookie = new_session(SIGNING, ACME_SCOPE, token_digest(ACME), now=1000)
    session = read_session(SIGNING, cookie, now=1001)
    assert session is not None and session.scope == ACME_SCOPE
    assert ACME.decode() not in cookie and token_digest(ACME).hex() not in cookie
    assert still_declared(SIGNING, session, TOKENS)


def test_a_session_whose_scope_was_edited_to_admin_is_refused():
    cookie = new_session(SIGNING, ACME_SCOPE, token_digest(ACME), now=1000)
    expiry, nonce, tag, _scope, signature = cookie.split(".")
    admin = base64.urlsafe_b64encode(json.dumps(["MEDIAFLOW_API_TOKEN", None]).encode())
    forged = ".".join([expiry, nonce, tag, admin.decode().rstrip("="), signature])
    assert read_session(SIGNING, forged, now=1001) is None


def test_a_session_ends_when_its_token_is_removed_rotated_or_moved_to_another_client():
    session = read_session(
        SIGNING, new_session(SIGNING, ACME_SCOPE, token_digest(ACME), now=1000), now=1001
    )
    assert session is not None
    rotated = ApiTokens(((token_digest(b"acme-rotated-0123456789"), ACME_SCOPE),))
    moved = ApiTokens(((token_digest(ACME), Scope("acme-platform", "other")),))
    for tokens in (ApiTokens(()), rotated, moved):
        assert not still_declared(SIGNING, session, tokens)


def test_an_expired_or_foreign_signed_session_is_refused():
    cookie = new_session(SIGNING, ACME_SCOPE, token_digest(ACME), now=1000)
    assert read_session(SIGNING, cookie, now=1000 + SESSION_TTL_S + 1) is None
    other_admin = session_key(Secret("another-admin-token-0123"))
    assert read_session(other_admin, cookie, now=1001) is None
    assert read_session(SIGNING, "garbage", now=1001) is None


def test_every_copy_of_the_api_derives_the_same_key_from_the_same_admin_token():
    cookie = new_session(SIGNING, ACME_SCOPE, token_digest(ACME), now=1000)
    another_copy = session_key(Secret("admin-token-0123456789"))
    assert read_session(another_copy, cookie, now=1001) is not None
