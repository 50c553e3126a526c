"""Authenticator rules, including the verified-token cache."""

from __future__ import annotations

import time

import jwt
import pytest

from tocsin.auth import Authenticator, Publisher, Subscriber, mint_token
from tocsin.errors import TocsinError

SECRET = "s" * 32


def test_keys_tokens_and_topic_patterns() -> None:
    auth = Authenticator(["key-1"], SECRET)
    assert isinstance(auth.authenticate("key-1"), Publisher)
    tok, _ = mint_token(SECRET, "alice", ["project:*", "team:core"], 60)
    who = auth.authenticate(tok)
    assert isinstance(who, Subscriber) and who.user == "alice"
    assert who.may_read("project:42") and who.may_read("team:core")
    assert not who.may_read("team:core2") and not who.may_read("projects")


def test_cached_token_still_expires() -> None:
    auth = Authenticator([], SECRET)
    tok = jwt.encode({"sub": "bob", "exp": int(time.time()) + 1}, SECRET, "HS256")
    assert auth.authenticate(tok) == auth.authenticate(tok)  # second use: from the cache
    time.sleep(1.1)
    with pytest.raises(TocsinError, match="expired"):
        auth.authenticate(tok)


def test_forged_and_malformed_tokens_are_rejected() -> None:
    auth = Authenticator([], SECRET)
    good, _ = mint_token(SECRET, "carol", None, 60)
    auth.authenticate(good)
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    for bad in (forged, jwt.encode({"sub": "carol"}, "x" * 32, "HS256"), "a.b.c",
                jwt.encode({"sub": ""}, SECRET, "HS256"), ""):
        with pytest.raises(TocsinError) as err:
            auth.authenticate(bad)
        assert err.value.status == 401
