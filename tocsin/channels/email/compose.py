"""The emails themselves: one notification, or a digest of several.

Everything a notification carries is publisher (or end-user) data: in the HTML part
it is escaped, never inserted as markup; links are only ``http(s)`` URLs; the
Subject is stripped of control characters (no header injection) and capped. Each
email has a text/plain part and an HTML alternative, the RFC 8058 one-click
unsubscribe headers, a Message-ID and ``X-Tocsin-Notification``.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

from tocsin.store.base import Json

MAX_SUBJECT_CHARS = 150
MAX_BODY_CHARS = 5000
MAX_LINE_CHARS = 300
DIGEST_LISTED = 50
"""Notifications a digest lists one by one; the rest are counted."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: object, limit: int) -> str:
    """``text`` on one line (control characters, CR and LF become spaces), at most
    ``limit`` characters (an ellipsis marks a cut)."""
    s = " ".join(_CONTROL.sub(" ", str(text)).split())
    return s if len(s) <= limit else s[: limit - 1].rstrip() + "…"


def safe_link(url: object) -> str | None:
    """``url`` if it is an absolute http(s) URL without spaces or control characters."""
    if not isinstance(url, str) or len(url) > 2048:
        return None
    if not url.lower().startswith(("http://", "https://")) or _CONTROL.search(url) \
            or any(c.isspace() for c in url) or len(url.split("://", 1)[1]) == 0:
        return None
    return url


def _body_text(note: Json) -> str:
    body = str(note.get("body") or "")
    body = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", body).replace("\r\n", "\n")
    return body if len(body) <= MAX_BODY_CHARS else body[: MAX_BODY_CHARS - 1] + "…"


def domain_of(from_: str) -> str:
    addr = parseaddr(from_)[1]
    return addr.rpartition("@")[2] or "localhost"


def _message(from_: str, to: str, subject: str, now_ms: int, msg_id: str,
             unsubscribe: str | None) -> EmailMessage:
    msg = EmailMessage()
    name, addr = parseaddr(from_)
    local, _, domain = addr.rpartition("@")
    msg["From"] = Address(display_name=name, username=local, domain=domain)
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(now_ms / 1000, usegmt=True)
    msg["Message-ID"] = msg_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to it
    if unsubscribe is not None:
        msg["List-Unsubscribe"] = f"<{unsubscribe}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    return msg


def _footer(unsubscribe: str | None, what: str) -> tuple[str, str]:
    if unsubscribe is None:
        return "", ""
    text = f"\n-- \nYou get these emails for {what}. Stop them: {unsubscribe}\n"
    page = (f'<hr style="border:none;border-top:1px solid #ddd;margin:24px 0 8px">'
            f'<p style="color:#777;font-size:12px">You get these emails for '
            f'{html.escape(what)}. <a href="{html.escape(unsubscribe, quote=True)}">'
            f"Stop them</a>.</p>")
    return text, page


def _page(inner: str) -> str:
    return ('<!doctype html><html><body style="font-family:system-ui,sans-serif;'
            'color:#222;max-width:600px;margin:0 auto;padding:16px">'
            f"{inner}</body></html>")


def _msg_id(kind: str, user: str, tag: str, domain: str) -> str:
    # Stable per notification (or digest): a retried send after an unknown outcome
    # carries the same Message-ID, which lets mail systems drop the duplicate.
    uh = hashlib.sha256(user.encode()).hexdigest()[:16]
    return f"<tocsin.{kind}.{tag}.{uh}@{domain}>"


def compose_one(note: Json, user: str, to: str, from_: str,
                unsubscribe: str | None, now_ms: int) -> EmailMessage:
    nid, type_ = str(note["id"]), str(note["type"])
    title = one_line(note.get("title") or type_, MAX_SUBJECT_CHARS)
    body = _body_text(note)
    link = safe_link(note.get("url"))
    msg = _message(from_, to, title, now_ms, _msg_id("n", user, nid, domain_of(from_)),
                   unsubscribe)
    msg["X-Tocsin-Notification"] = nid
    foot_text, foot_html = _footer(unsubscribe, f'"{one_line(type_, 100)}" notifications')
    text = title + "\n\n" + (body + "\n\n" if body else "")
    if link:
        text += f"Open: {link}\n"
    msg.set_content(text + foot_text)
    inner = f'<h2 style="font-size:18px">{html.escape(title)}</h2>'
    if body:
        inner += ('<p style="white-space:pre-wrap">'
                  + html.escape(body).replace("\n", "<br>") + "</p>")
    if link:
        inner += (f'<p><a href="{html.escape(link, quote=True)}" style="color:#0b57d0">'
                  "Open</a></p>")
    msg.add_alternative(_page(inner + foot_html), subtype="html")
    return msg


def _when(ts: Any) -> str:
    if not isinstance(ts, int):
        return ""
    return datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def compose_digest(notes: list[Json], more: int, user: str, to: str, from_: str,
                   unsubscribe: str | None, period_end: int, now_ms: int) -> EmailMessage:
    """One email for ``notes`` (still unread, oldest first) plus ``more`` counted
    but not listed."""
    total = len(notes) + more
    subject = f"{total} unread notification{'' if total == 1 else 's'}"
    msg = _message(from_, to, subject, now_ms,
                   _msg_id("d", user, str(period_end), domain_of(from_)), unsubscribe)
    listed = notes[:DIGEST_LISTED]
    msg["X-Tocsin-Notification"] = " ".join(str(n["id"]) for n in listed)
    rest = total - len(listed)
    types = list(dict.fromkeys(one_line(n["type"], 100) for n in notes))
    lines, items = [subject, ""], []
    for n in listed:
        title = one_line(n.get("title") or n["type"], MAX_LINE_CHARS)
        link = safe_link(n.get("url"))
        when = _when(n.get("timestamp"))
        lines.append(f"- {title} ({one_line(n['type'], 100)}, {when})"
                     + (f"\n  {link}" if link else ""))
        label = html.escape(title)
        if link:
            label = f'<a href="{html.escape(link, quote=True)}" style="color:#0b57d0">{label}</a>'
        items.append(f'<li style="margin:6px 0">{label} <span style="color:#777">'
                     f"({html.escape(one_line(n['type'], 100))}, {html.escape(when)})"
                     "</span></li>")
    if rest > 0:
        lines.append(f"… and {rest} more")
        items.append(f"<li>… and {rest} more</li>")
    if len(types) == 1:
        what = f'"{types[0]}" notifications'
    else:
        what = ("the types " + ", ".join(f'"{t}"' for t in types[:20])) if types \
            else "these notifications"
    foot_text, foot_html = _footer(unsubscribe, what)
    msg.set_content("\n".join(lines) + "\n" + foot_text)
    inner = (f'<h2 style="font-size:18px">{html.escape(subject)}</h2>'
             f'<ul style="padding-left:20px">{"".join(items)}</ul>')
    msg.add_alternative(_page(inner + foot_html), subtype="html")
    return msg
