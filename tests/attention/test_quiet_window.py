"""Quiet-hours evaluation in the user's zone (no server): midnight crossing, chosen
days, and both daylight-saving changes in Europe/Berlin."""

from __future__ import annotations

from datetime import UTC, datetime

from tocsin.attention.decide import decide, quiet_window


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


BERLIN = {"timezone": "Europe/Berlin", "start": "22:00", "end": "07:00",
          "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}


def test_spring_forward_window_is_eight_hours() -> None:
    # 2026-03-29 02:00 CET -> 03:00 CEST: Sat 22:00 CET = 21:00Z, Sun 07:00 CEST = 05:00Z
    w = quiet_window(BERLIN, ms(2026, 3, 29, 4, 59))
    assert w == (ms(2026, 3, 28, 21, 0), ms(2026, 3, 29, 5, 0))
    assert quiet_window(BERLIN, ms(2026, 3, 29, 5, 0)) is None
    assert quiet_window(BERLIN, ms(2026, 3, 28, 20, 59)) is None


def test_fall_back_window_is_ten_hours() -> None:
    # 2026-10-25 03:00 CEST -> 02:00 CET: Sat 22:00 CEST = 20:00Z, Sun 07:00 CET = 06:00Z
    w = quiet_window(BERLIN, ms(2026, 10, 25, 5, 30))
    assert w == (ms(2026, 10, 24, 20, 0), ms(2026, 10, 25, 6, 0))
    assert quiet_window(BERLIN, ms(2026, 10, 25, 6, 0)) is None


def test_days_are_the_days_a_window_starts() -> None:
    fri = {**BERLIN, "days": ["fri"]}
    # Fri 2026-01-09 23:00 CET and Sat 06:00 CET are inside; Sat 23:00 is not
    assert quiet_window(fri, ms(2026, 1, 9, 22, 0)) is not None
    assert quiet_window(fri, ms(2026, 1, 10, 5, 0)) is not None
    assert quiet_window(fri, ms(2026, 1, 10, 22, 0)) is None
    day = {"timezone": "America/New_York", "start": "09:00", "end": "17:00"}
    assert quiet_window(day, ms(2026, 1, 9, 14, 0)) is not None  # 09:00 EST
    assert quiet_window(day, ms(2026, 1, 9, 13, 59)) is None
    whole = {"timezone": "UTC", "start": "00:00", "end": "00:00", "days": ["sun"]}
    assert quiet_window(whole, ms(2026, 1, 11, 23, 59)) is not None
    assert quiet_window(whole, ms(2026, 1, 12, 0, 0)) is None


def test_the_decision_order() -> None:
    now = ms(2026, 1, 9, 23, 0)
    quiet = {"quietHours": BERLIN, "urgentBypassesQuiet": True}
    assert decide(quiet, None, "x", "high", now)[0] == "quiet_hours"
    assert decide(quiet, None, "x", "urgent", now) == (None, None)
    assert decide({**quiet, "urgentBypassesQuiet": False}, None, "x", "urgent", now
                  )[0] == "quiet_hours"
    dnd = {"dnd": {"until": now + 1000, "since": now - 1000}}
    assert decide(dnd, None, "x", "low", now) == ("dnd", (now - 1000, now + 1000))
    assert decide(dnd, None, "x", "low", now + 1000) == (None, None)
    mine = {"types": {"x": {"channels": ["inbox"], "minPriority": "low"}}}
    assert decide(mine, None, "x", "urgent", now)[0] == "preferences"
    assert decide(mine, None, "y", "urgent", now) == (None, None)
    pub = {"types": {"y": {"channels": ["interrupt"], "minPriority": "low"},
                     "*": {"channels": ["inbox", "interrupt"], "minPriority": "high"}}}
    assert decide(None, pub, "y", "low", now)[0] == "skip"
    assert decide(None, pub, "z", "medium", now)[0] == "preferences"
    assert decide(mine, pub, "x", "high", now)[0] == "preferences"  # own choice wins
