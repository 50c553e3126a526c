"""/docs and /redoc on a real server load nothing from another host: every script,
stylesheet and icon they name is served by Tocsin itself (issue 21, item 15: an
unpinned swagger-ui from a public CDN, and no docs on an air-gapped network)."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.support.server import ServerProcess

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
URL_IN_SCRIPT = re.compile(r"""url\s*:\s*['"]([^'"]+)['"]|['"]((?:https?:)?//[^'"]+)['"]""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_their_own_assets(server: ServerProcess, page: str) -> None:
    r = httpx.get(server.url + page, timeout=10)
    assert r.status_code == 200, r.text
    csp = r.headers["content-security-policy"]
    assert "http" not in csp and "//" not in csp, csp  # no other origin allowed
    named = ASSET.findall(r.text) + [a or b for a, b in URL_IN_SCRIPT.findall(r.text)]
    assets = [u for u in named if u and not u.startswith("#")]
    assert len(assets) >= 2, r.text  # the viewer's script (and its stylesheet or icon)
    for ref in assets:
        url = urljoin(server.url + page, ref)
        assert urlsplit(url).netloc == urlsplit(server.url).netloc, (page, ref)
        got = httpx.get(url, timeout=10)
        assert got.status_code == 200, (ref, got.status_code)
        assert got.content, ref
    scripts = [u for u in assets if u.endswith(".js")]
    assert scripts, assets
    for ref in scripts:
        got = httpx.get(urljoin(server.url + page, ref), timeout=10)
        assert "javascript" in got.headers["content-type"], ref
        assert len(got.content) > 100_000  # the whole viewer, not a loader of another
