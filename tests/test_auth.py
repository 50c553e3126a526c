"""Authenticator rules, including the verified-token cache."""

from __future__ import annotations

import re
import time

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tocsin.auth import (
    Authenticator,
    Credential,
    Publisher,
    Subscriber,
    find_credential,
    glob_match,
    mint_token,
)
from tocsin.errors import TocsinError

SECRET = "s" * 32


def bearer(value: str) -> Credential:
    return Credential(value, "header")


def test_keys_tokens_and_topic_patterns() -> None:
    auth = Authenticator(["key-1"], SECRET)
    assert isinstance(auth.authenticate(bearer("key-1")), Publisher)
    tok, _ = mint_token(SECRET, "alice", ["project:*", "team:core"], 60)
    who = auth.authenticate(bearer(tok))
    assert isinstance(who, Subscriber) and who.user == "alice"
    assert who.may_read("project:42") and who.may_read("team:core")
    assert not who.may_read("team:core2") and not who.may_read("projects")


def test_cached_token_still_expires() -> None:
    auth = Authenticator([], SECRET)
    tok = jwt.encode({"sub": "bob", "exp": int(time.time()) + 1}, SECRET, "HS256")
    # The second use comes from the cache.
    assert auth.authenticate(bearer(tok)) == auth.authenticate(bearer(tok))
    time.sleep(1.1)
    with pytest.raises(TocsinError, match="expired"):
        auth.authenticate(bearer(tok))


def test_forged_and_malformed_tokens_are_rejected() -> None:
    auth = Authenticator([], SECRET)
    good, _ = mint_token(SECRET, "carol", None, 60)
    auth.authenticate(bearer(good))
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    for bad in (forged, jwt.encode({"sub": "carol"}, "x" * 32, "HS256"), "a.b.c",
                jwt.encode({"sub": ""}, SECRET, "HS256"), ""):
        with pytest.raises(TocsinError) as err:
            auth.authenticate(bearer(bad))
        assert err.value.status == 401


def test_the_cache_by_signature_takes_only_that_very_token() -> None:
    """The verified-token cache is keyed by the signature: a cached signature beside
    other claims (a different user or topics) is refused, not answered from the cache,
    and tokens with the same topics share one tuple."""
    auth = Authenticator([], SECRET)
    good, _ = mint_token(SECRET, "dave", ["team:*"], 60)
    other, _ = mint_token(SECRET, "erin", ["team:*"], 60)
    first = auth.authenticate(bearer(good))
    assert isinstance(first, Subscriber) and first.user == "dave"
    second = auth.authenticate(bearer(other))
    assert isinstance(second, Subscriber) and second.topics is first.topics
    header, _, signature = good.split(".")
    claims = jwt.encode({"sub": "mallory", "exp": int(time.time()) + 60, "topics": ["*"]},
                        "x" * 32, "HS256").split(".")[1]
    theirs = other.split(".")[1]
    for tampered in (f"{header}.{claims}.{signature}", f"{header}.{theirs}.{signature}"):
        with pytest.raises(TocsinError) as err:
            auth.authenticate(bearer(tampered))
        assert err.value.status == 401
    assert auth.authenticate(bearer(good)) is first  # from the cache


def test_api_keys_only_in_the_authorization_header() -> None:
    auth = Authenticator(["key-1"], SECRET)
    tok, _ = mint_token(SECRET, "alice", None, 60)
    for source in ("cookie", "query"):
        with pytest.raises(TocsinError, match="only in the") as err:
            auth.authenticate(Credential("key-1", source))  # type: ignore[arg-type]
        assert err.value.status == 401
        assert isinstance(auth.authenticate(Credential(tok, source)),  # type: ignore[arg-type]
                          Subscriber)


@pytest.mark.parametrize(("headers", "query", "expected"), [
    ({"authorization": "Bearer abc"}, b"token=q", Credential("abc", "header")),
    ({"authorization": "bearer  abc "}, b"", Credential("abc", "header")),
    ({"cookie": "a=1; tocsin_token=xyz; b=2"}, b"token=q", Credential("xyz", "cookie")),
    ({"cookie": 'tocsin_token="xyz"'}, b"", Credential("xyz", "cookie")),
    # Names SimpleCookie refuses must not break the request (cookies of sibling sites).
    ({"cookie": "we(ird=1; tocsin_token=xyz"}, b"", Credential("xyz", "cookie")),
    ({"cookie": "we(ird=1"}, b"lastEventId=1&token=q%2B", Credential("q+", "query")),
    ({"authorization": "Basic Zm9v"}, b"", None),
    ({}, b"tokens=1", None),
])
def test_one_credential_rule(headers: dict[str, str], query: bytes,
                             expected: Credential | None) -> None:
    assert find_credential(headers, query) == expected


def _regex_glob(pattern: str, text: str) -> bool:
    """The reference: the regex the matcher used to compile (fine on short inputs)."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, text, re.DOTALL) is not None


@given(st.text("ab*?.", max_size=8), st.text("ab?.", max_size=10))
def test_glob_match_agrees_with_the_regex_it_replaced(pattern: str, text: str) -> None:
    assert glob_match(pattern, text) == _regex_glob(pattern, text)


@pytest.mark.parametrize(("pattern", "text", "expected"), [
    ("project:*", "project:", True), ("*", "", True), ("a*a", "a", False),
    ("a*b*c", "abc", True), ("a*b*c", "acb", False), ("*x*", "abc", False),
    ("team:core", "team:core", True), ("team:core", "team:core2", False),
    ("p[1]?", "p[1]?", True), ("p[1]?", "p1", False), ("**", "anything", True),
])
def test_glob_match_cases(pattern: str, text: str, expected: bool) -> None:
    assert glob_match(pattern, text) is expected


def test_pathological_pattern_matches_quickly() -> None:
    """``*a*a*a*a*b`` against 200 ``a``: the backtracking regex took 2.97 s on this
    machine (one more star: ~100 s, per the issue), all of it on the event loop. The
    linear matcher takes microseconds; the bound is generous on purpose."""
    who = Subscriber("eve", ("*a*a*a*a*b", "*a" * 20 + "*b"))
    started = time.perf_counter()
    assert not who.may_read("a" * 200)
    assert who.may_read("a" * 199 + "b")
    assert time.perf_counter() - started < 0.5


def test_tokens_without_exp_are_refused() -> None:
    auth = Authenticator([], SECRET)
    forever = jwt.encode({"sub": "dave", "iat": int(time.time())}, SECRET, "HS256")
    with pytest.raises(TocsinError, match="'exp'") as err:
        auth.authenticate(bearer(forever))
    assert err.value.status == 401
    tok, _ = mint_token(SECRET, "dave", None, 60)
    who = auth.authenticate(bearer(tok))
    assert isinstance(who, Subscriber) and who.expires_at is not None
