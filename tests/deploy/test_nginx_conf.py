"""``deploy/nginx.conf`` read as text, without running nginx: docs/deploy.md shows the
file itself (not a copy that drifts), and the rules nginx would let a later edit break
without any error hold in every location.

What the file does when served is ``test_nginx.py``'s (real nginx, real Tocsin).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy.nginx_proxy import CONF

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
FORWARDED = ("Host", "X-Forwarded-For", "X-Forwarded-Proto")
STREAM_PATHS = ["/api/notifications/stream", "/api/topics/team:ops/stream",
                "/api/notifications/poll", "/api/topics/team:ops/poll"]


@dataclass
class Block:
    """One ``name args { ... }`` of the file: its own directives and its inner blocks."""
    head: str
    directives: list[list[str]] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    def values(self, name: str) -> list[list[str]]:
        return [d[1:] for d in self.directives if d[0] == name]

    def walk(self) -> list[Block]:
        return [self, *(b for inner in self.blocks for b in inner.walk())]


def parse(text: str) -> Block:
    """Enough of nginx's syntax for this file: comments, quoted strings, directives
    ending in ``;``, blocks in braces."""
    tokens = re.findall(r'"[^"]*"|\'[^\']*\'|[{};]|[^\s{};"\']+',
                        re.sub(r"(?m)#.*$", "", text))
    stack, words = [Block("main")], list[str]()
    for tok in tokens:
        if tok == ";":
            stack[-1].directives.append(words)
            words = []
        elif tok == "{":
            block = Block(" ".join(words))
            stack[-1].blocks.append(block)
            stack.append(block)
            words = []
        elif tok == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
        else:
            words.append(tok.strip("\"'") if tok[0] in "\"'" else tok)
    assert len(stack) == 1 and not words, "unbalanced braces"
    return stack[0]


def locations() -> list[Block]:
    return [b for b in parse(CONF.read_text()).walk() if b.head.startswith("location")]


def location_for(path: str) -> Block:
    """The location nginx picks for ``path``: exact, then regex, then prefix (this file
    uses no ``^~``)."""
    locs = locations()
    for loc in locs:
        if loc.head == f"location = {path}":
            return loc
    for loc in locs:
        if loc.head.startswith("location ~ ") and re.search(loc.head.split(" ", 2)[2], path):
            return loc
    prefixes = [loc for loc in locs if len(loc.head.split()) == 2
                and path.startswith(loc.head.split()[1])]
    return max(prefixes, key=lambda loc: len(loc.head))


def test_the_deploy_doc_shows_the_shipped_file_verbatim() -> None:
    """The one ```nginx block of docs/deploy.md is the file, byte for byte: edit the
    file, then paste it into the doc (this test says when they differ)."""
    blocks = re.findall(r"^```nginx\n(.*?)^```$", DEPLOY_DOC.read_text(), re.S | re.M)
    assert len(blocks) == 1, f"expected one nginx block in {DEPLOY_DOC}, got {len(blocks)}"
    assert blocks[0] == CONF.read_text(), \
        f"the nginx block in {DEPLOY_DOC.name} differs from deploy/nginx.conf: copy it over"
    assert "deploy/nginx.conf" in DEPLOY_DOC.read_text()


def test_every_location_setting_headers_repeats_host_and_forwarded() -> None:
    """nginx inherits proxy_set_header only into a location that sets none: one that
    sets any (the WebSocket's Upgrade) silently loses Host and X-Forwarded-*."""
    server = next(b for b in parse(CONF.read_text()).walk() if b.head == "server")
    inherited = {v[0] for v in server.values("proxy_set_header")}
    assert set(FORWARDED) <= inherited
    setting = [loc for loc in locations() if loc.values("proxy_set_header")]
    assert setting, "no location sets headers: the WebSocket one must (Upgrade)"
    for loc in setting:
        own = {v[0] for v in loc.values("proxy_set_header")}
        assert set(FORWARDED) <= own, f"{loc.head} lacks {set(FORWARDED) - own}"
        server_values = {v[0]: v[1] for v in server.values("proxy_set_header")}
        for name in FORWARDED:
            assert dict((v[0], v[1]) for v in loc.values("proxy_set_header"))[name] \
                == server_values[name], f"{loc.head}: {name} differs from the server's"


def test_streams_and_long_polls_are_unbuffered_with_long_timeouts() -> None:
    for path in STREAM_PATHS:
        loc = location_for(path)
        assert loc.values("proxy_buffering") == [["off"]], (path, loc.head)
        assert loc.values("gzip") == [["off"]], (path, loc.head)
        assert loc.values("proxy_read_timeout") == [["1h"]], (path, loc.head)
    # everything else keeps nginx's buffering (and its 60 s timeouts)
    assert not location_for("/api/notifications").values("proxy_buffering")


def test_websocket_location_upgrades_with_long_timeouts() -> None:
    loc = location_for("/api/ws")
    headers = {v[0]: v[1] for v in loc.values("proxy_set_header")}
    assert headers["Upgrade"] == "$http_upgrade"
    assert headers["Connection"] == "$tocsin_connection_upgrade"
    assert loc.values("proxy_read_timeout") == [["1h"]]


def test_metrics_denied_and_access_log_without_query() -> None:
    assert location_for("/metrics").values("deny") == [["all"]]
    main = parse(CONF.read_text())
    fmt = " ".join(next(d for d in main.directives if d[:2] == ["log_format",
                                                                "tocsin_noquery"]))
    # $request and $request_uri carry the query string, $args and $arg_* are parts of it
    leaky = re.findall(r"\$(?:request|request_uri|args|query_string|arg_\w+|http_referer)\b",
                       fmt)
    assert not leaky, leaky
    assert "$uri" in fmt
    server = next(b for b in main.walk() if b.head == "server")
    assert [v[-1] for v in server.values("access_log")] == ["tocsin_noquery"]
    assert not any(loc.values("access_log") for loc in locations())
