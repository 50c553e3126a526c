"""``--console`` is off for ``serve`` and on for ``demo`` unless TOCSIN_CONSOLE says."""

from __future__ import annotations

import pytest

from tocsin import cli


def test_serve_off_demo_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOCSIN_CONSOLE", raising=False)
    assert cli.build_settings({"api_keys": ["k" * 16]}).console is False
    assert cli.build_settings({"console": True, "api_keys": ["k" * 16]}).console is True
    assert cli.build_settings({}, demo=True).console is True


def test_the_variable_turns_it_off_in_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_CONSOLE", "0")
    assert cli.build_settings({}, demo=True).console is False
    monkeypatch.setenv("TOCSIN_CONSOLE", "1")
    assert cli.build_settings({}).console is True
