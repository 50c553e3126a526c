"""/openapi.json describes every route as served, the hot routes included, from the
same models and parameter names the routes use; and each route exists once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from tests.support.inprocess import InProcess, in_process
from tocsin.api.bulk import BULK_PATH
from tocsin.api.hot_routes import INBOX_STREAM_PATH, PUBLISH_PATH
from tocsin.api.models import PublishIn

HOT = {("post", PUBLISH_PATH), ("post", BULK_PATH), ("get", INBOX_STREAM_PATH),
       ("get", "/api/topics/{topic}/stream")}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(f"sqlite+aiosqlite:///{tmp_path / 'db'}") as a:
        yield a


@pytest.fixture
async def schema(app: InProcess) -> dict[str, Any]:
    async with app.client() as c:
        r = await c.get("/openapi.json")
    assert r.status_code == 200
    data: dict[str, Any] = r.json()
    return data


def test_hot_routes_are_not_also_framework_routes(app: InProcess) -> None:
    framework = {(m.lower(), r.path) for r in app.app.fastapi.routes
                 if isinstance(r, APIRoute) for m in r.methods}
    assert not HOT & framework, "a hot route is implemented twice"


def test_every_hot_route_is_documented(schema: dict[str, Any]) -> None:
    for method, path in HOT:
        assert method in schema["paths"].get(path, {}), (method, path)


def test_publish_body_is_the_model_the_route_validates(schema: dict[str, Any]) -> None:
    op = schema["paths"][PUBLISH_PATH]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    documented = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    model = PublishIn.model_json_schema(by_alias=True)
    assert set(documented["properties"]) == set(model["properties"])
    assert set(documented.get("required", [])) == set(model.get("required", []))
    assert "201" in op["responses"] and "415" in op["responses"]
    # Publisher keys only in the Authorization header: nothing else is offered.
    assert op.get("security") == [{"HTTPBearer": []}]


def test_bulk_items_are_the_publish_model(schema: dict[str, Any]) -> None:
    op = schema["paths"][BULK_PATH]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    documented = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    items = documented["properties"]["notifications"]
    assert items["items"]["$ref"].rsplit("/", 1)[1] == "PublishIn"
    assert items["maxItems"] == 1000 and documented["required"] == ["notifications"]
    assert "200" in op["responses"] and "413" in op["responses"]
    assert op.get("security") == [{"HTTPBearer": []}]


@pytest.mark.parametrize("path", [INBOX_STREAM_PATH, "/api/topics/{topic}/stream"])
def test_streams_document_what_they_read(schema: dict[str, Any], path: str) -> None:
    op = schema["paths"][path]["get"]
    params = {(p["in"], p["name"]) for p in op.get("parameters", [])}
    assert {("header", "Last-Event-ID"), ("query", "lastEventId")} <= params
    offered = {name for sec in op["security"] for name in sec}
    assert offered == {"HTTPBearer", "APIKeyCookie", "APIKeyQuery"}
    assert "text/event-stream" in op["responses"]["200"]["content"]


async def test_every_documented_operation_is_served(app: InProcess,
                                                    schema: dict[str, Any]) -> None:
    """Nothing in the schema is a missing route: with a publisher key or a user token
    each operation reaches its handler (streams are probed with the caller they refuse,
    so they answer at once; an unknown notification id is the handler's own 404)."""
    from tests.support.server import API_KEY, mint

    callers = {"publisher": f"Bearer {API_KEY}", "subscriber": f"Bearer {mint('probe')}"}
    async with app.client() as c:
        for path, ops in schema["paths"].items():
            url = path.replace("{topic}", "t1").replace("{id}", "0" * 28)
            for method in ops:
                seen = []
                for role, authz in callers.items():
                    if path.endswith("/stream") and role == "subscriber":
                        continue
                    r = await c.request(method.upper(), url, headers={"authorization": authz})
                    assert r.status_code < 500, (method, path, r.text)
                    missing = r.status_code == 405 or (
                        r.status_code == 404 and r.json()["error"]["message"] == "Not Found")
                    seen.append(missing)
                assert not all(seen), f"{method.upper()} {path} is documented but not served"
