"""The email channel's pieces without a server: digest periods, the messages
(escaping, subject, links), unsubscribe tokens, address checks, SMTP settings,
the send's retry and give-up, the sink with a login, and ``low`` -> email only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import aiosmtplib
import pytest
from pydantic import SecretStr

from tests.support.server import free_port
from tocsin.attention.decide import reach
from tocsin.channels.email.compose import compose_digest, compose_one, one_line, safe_link
from tocsin.channels.email.links import mint_unsubscribe, public_base, verify_unsubscribe
from tocsin.channels.email.service import (
    MAX_ATTEMPTS,
    check_address,
    digest_timer_id,
    period_end,
)
from tocsin.channels.email.smtp import SmtpConfig, SmtpSender
from tocsin.config import Settings
from tocsin.devtools.smtp_sink import SmtpSink
from tocsin.errors import TocsinError
from tocsin.scheduler import RetryLater, Timer
from tocsin.service import Tocsin

SECRET = "s" * 40


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0, tz: str = "UTC") -> int:
    zone = UTC if tz == "UTC" else ZoneInfo(tz)
    return int(datetime(y, mo, d, h, mi, tzinfo=zone).timestamp() * 1000)


def test_period_end() -> None:
    assert period_end("hourly", at(2026, 1, 1, 10, 5), None) == at(2026, 1, 1, 11)
    assert period_end("hourly", at(2026, 1, 1, 11), None) == at(2026, 1, 1, 12)  # strictly after
    assert period_end("daily", at(2026, 1, 1, 23, 59), None) == at(2026, 1, 2)
    # Berlin: midnight local (23:00Z in winter), the user's quiet-hours zone
    # 23:30Z is already Jan 2 in Berlin: its day ends at 23:00Z, not at 00:00Z
    assert period_end("daily", at(2026, 1, 1, 23, 30), "Europe/Berlin") == \
        at(2026, 1, 3, 0, 0, "Europe/Berlin") == at(2026, 1, 2, 23)
    assert period_end("daily", at(2026, 1, 1, 12), "Not/AZone") == at(2026, 1, 2)
    assert len(digest_timer_id("u" * 200, 1)) <= 200


def note(**kw: object) -> dict[str, object]:
    return {"id": "n1", "type": "comment", "title": "T", "body": "", "priority": "medium",
            "timestamp": at(2026, 1, 1), **kw}


def parts(msg: EmailMessage) -> tuple[str, str]:
    text, page = msg.get_body(("plain",)), msg.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(page, EmailMessage)
    return text.get_content(), page.get_content()


def test_one_email_escapes_everything_and_filters_links() -> None:
    msg = compose_one(note(title="<img src=x onerror=alert(1)>\r\nBcc: e@x.com" + "y" * 300,
                           body='"quoted" <a href="javascript:x">', url="javascript:alert(1)"),
                      "u", "u@example.com", "Tocsin <t@example.com>",
                      "https://n.example.com/api/email/unsubscribe?token=a.b.c", 0)
    assert "\n" not in str(msg["Subject"]) and len(str(msg["Subject"])) <= 150
    assert msg["Bcc"] is None and msg["X-Tocsin-Notification"] == "n1"
    text, page = parts(msg)
    assert "<img" not in page and "&lt;img" in page and 'href="javascript' not in page
    assert "&lt;a href=&quot;javascript:x&quot;&gt;" in page
    assert "Open:" not in text
    assert msg["List-Unsubscribe"] == "<https://n.example.com/api/email/unsubscribe?token=a.b.c>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert safe_link("https://a.example.com/x") == "https://a.example.com/x"
    for bad in ("javascript:alert(1)", "data:text/html,x", "/relative", "https://a b",
                "http://", "ftp://x", None, 3):
        assert safe_link(bad) is None
    assert one_line("a\r\nb\tc\u2028d", 100) == "a b c d"


def test_digest_lists_fifty_and_counts_the_rest() -> None:
    notes = [note(id=f"n{i}", title=f"title {i}", type="a" if i % 2 else "b")
             for i in range(60)]
    msg = compose_digest(notes, 5, "u", "u@example.com", "t@example.com", None, 1, 0)
    assert msg["Subject"] == "65 unread notifications"
    assert len(str(msg["X-Tocsin-Notification"]).split()) == 50
    text, _ = parts(msg)
    assert "title 49" in text and "title 50" not in text and "and 15 more" in text
    assert msg["List-Unsubscribe"] is None  # no link without a secret to sign it
    one = compose_digest(notes[:1], 0, "u", "u@example.com", "t@example.com", None, 1, 0)
    assert one["Subject"] == "1 unread notification"


def test_unsubscribe_tokens() -> None:
    token = mint_unsubscribe(SECRET, "ann", ["a", "b", "a"])
    assert verify_unsubscribe(SECRET, token) == ("ann", ["a", "b"])
    with pytest.raises(TocsinError) as e:
        verify_unsubscribe("t" * 40, token)
    assert e.value.status == 401
    with pytest.raises(TocsinError) as e:
        verify_unsubscribe(SECRET, mint_unsubscribe(SECRET, "ann", ["a"], now_s=1, ttl_s=1))
    assert e.value.status == 401 and "expired" in e.value.message
    for bad in (None, "", "x", "a.b.c", "x" * 5000):
        with pytest.raises(TocsinError) as e:
            verify_unsubscribe(SECRET, bad)
        assert e.value.status == 400
    # a login token signed with the secret itself is no unsubscribe token
    from tocsin.auth import mint_token

    with pytest.raises(TocsinError):
        verify_unsubscribe(SECRET, mint_token(SECRET, "ann")[0])


def test_check_address() -> None:
    assert check_address(None) is None
    assert check_address("Ann@Example.COM") == "Ann@example.com"
    assert check_address("a@bücher.example") == "a@xn--bcher-kva.example"
    for bad in ("", "a", "a@b", "a@b@c.com", "a b@c.com", "a@c.com\n", "ü@c.com",
                "a" * 250 + "@c.com", 1, {"a": 1}):
        with pytest.raises(TocsinError):
            check_address(bad)


def test_smtp_settings_and_public_url() -> None:
    s = Settings(smtp_url="smtps://me%40x.com:p%3Aw%2F@mail.example.com", port=8123,
                 host="0.0.0.0")
    c = SmtpConfig.from_settings(s)
    assert c is not None
    assert (c.host, c.port, c.implicit_tls, c.starttls, c.username, c.password) == (
        "mail.example.com", 465, True, False, "me@x.com", "p:w/")
    assert c.sender == "tocsin@localhost" and public_base(s) == "http://localhost:8123"
    s = Settings(smtp_url="smtp://mail.example.com:587", smtp_user="u",
                 smtp_password=SecretStr("pw"), smtp_starttls=True,
                 smtp_from="Ops <ops@example.com>", public_url="https://n.example.com/")
    c = SmtpConfig.from_settings(s)
    assert c is not None and (c.port, c.starttls, c.username, c.password, c.sender) == (
        587, True, "u", "pw", "Ops <ops@example.com>")
    assert public_base(s) == "https://n.example.com"
    assert SmtpConfig.from_settings(Settings()) is None
    assert "pw" not in repr(s) and "pw" not in str(s.smtp_password)


def timer(attempts: int) -> Timer:
    return Timer("email:n1", "email", "n1", 0, {"user": "u"}, attempts, "me", 0)


async def test_failed_send_retries_then_gives_up(tmp_path: Path) -> None:
    s = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db'}",
                 smtp_url=f"smtp://127.0.0.1:{free_port()}")  # nobody listens there
    channel = Tocsin(s).email
    config = SmtpConfig.from_settings(s)
    assert config is not None
    channel.sender = SmtpSender(config)
    msg = compose_one(note(), "u", "u@example.com", config.sender, None, 0)
    with pytest.raises(RetryLater) as later:
        await channel._send(timer(1), msg, "n1")
    assert later.value.delay_ms == 30_000
    with pytest.raises(RetryLater) as later:
        await channel._send(timer(MAX_ATTEMPTS - 1), msg, "n1")
    assert later.value.delay_ms == 15 * 60_000
    assert await channel._send(timer(MAX_ATTEMPTS), msg, "n1") is True  # given up
    values = {m.labels["result"]: m.value for m in channel.sent.collect()[0].samples
              if m.name.endswith("_total")}
    assert values == {"error": 3.0, "gave_up": 1.0}


async def test_sink_with_a_login() -> None:
    with SmtpSink(login=("me@x.com", "p:w")) as sink:
        msg = compose_one(note(title="hi"), "u", "u@example.com", "t@example.com", None, 0)
        with pytest.raises(aiosmtplib.SMTPException):
            await aiosmtplib.send(msg, hostname="127.0.0.1", port=sink.port,
                                  username="me@x.com", password="wrong")
        config = SmtpConfig.from_settings(Settings(
            smtp_url=sink.url.replace("smtp://", "smtp://me%40x.com:p%3Aw@")))
        assert config is not None
        await SmtpSender(config).send(msg)
        got = await asyncio.to_thread(sink.wait, 1)
        assert [m["subject"] for m in got] == ["hi"] and got[0]["to"] == ["u@example.com"]


def test_low_goes_by_email_only() -> None:
    prefs = {"types": {"t": {"channels": ["inbox", "interrupt", "push", "email"],
                             "pushMinPriority": "low", "emailAfter": 60}}}
    channels = Tocsin(Settings()).channels  # the registered ones: push, email
    assert reach(prefs, None, "t", "low", 0, None, None, channels) == {"email": 60_000}
    assert reach(prefs, None, "t", "medium", 0, None, None, channels) == {
        "push": 0, "email": 60_000}
    # a quiet period delays both to its end
    assert reach(prefs, None, "t", "medium", 0, "quiet_hours", (0, 3_600_000),
                 channels) == {"push": 3_600_000, "email": 3_600_000}
