"""The bodies a target gets, one per ``format``; every text a publisher wrote is
escaped for the receiver's markup, and a link is kept only if it is ``http(s)``.

- ``slack``: ``{text, blocks}`` (mrkdwn: ``& < >`` escaped, so no ``<!channel>``
  mention or ``<url|label>`` link can be injected; the link is ours, ``<url|Open>``);
- ``discord``: ``{content, embeds}`` (markdown and mentions escaped,
  ``allowed_mentions`` empty);
- ``teams``: a MessageCard (``title``, ``text``, ``potentialAction`` for the link;
  Teams renders markdown and some HTML in ``text``: both escaped);
- ``generic``: the notification JSON as Tocsin stores it, with the user.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

Format = Literal["slack", "discord", "teams", "generic"]
FORMATS: tuple[str, ...] = ("slack", "discord", "teams", "generic")
MAX_TEXT = 3000
"""Slack's limit for a section's text; the others are cut to the same."""
_EMOJI = {"low": "", "medium": "", "high": ":warning: ", "urgent": ":rotating_light: "}
_MARKDOWN = re.compile(r"([\\`*_~|>#\[\]()!-])")


def safe_link(url: object) -> str | None:
    """``url`` if it is an absolute ``http(s)`` URL without spaces or control
    characters; anything else (``javascript:``, relative, ...) is dropped."""
    if not isinstance(url, str) or any(c.isspace() or ord(c) < 32 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def slack_escape(text: str) -> str:
    """Slack's three control characters (its documented escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_escape(text: str) -> str:
    """Markdown control characters backslash-escaped, HTML's ``& < >`` as entities
    (Discord, Teams); ``@`` broken so no mention can ping (``@everyone``)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", text).replace("@", "@\u200b")


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "\u2026"


def render(fmt: str, note: dict[str, Any], user: str | None) -> bytes:
    """The request body of ``note`` for a target of format ``fmt`` (``user``: the
    recipient, ``None`` for a named target an escalation posts to)."""
    title, body = str(note.get("title") or ""), str(note.get("body") or "")
    priority = str(note.get("priority") or "medium")
    link = safe_link(note.get("url"))
    if fmt == "slack":
        head = f"{_EMOJI.get(priority, '')}*{slack_escape(title)}*"
        text = _cut(f"{head}\n{slack_escape(body)}" if body else head)
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": f"priority: {slack_escape(priority)}"}]}]
        if link:
            blocks.append({"type": "section", "text": {
                "type": "mrkdwn", "text": f"<{slack_escape(link)}|Open>"}})
        return orjson.dumps({"text": f"[{priority}] {slack_escape(title)}", "blocks": blocks})
    if fmt == "discord":
        embed: dict[str, Any] = {"title": _cut(markdown_escape(title))[:256],
                                 "description": _cut(markdown_escape(body)),
                                 "fields": [{"name": "priority", "value": priority}]}
        if link:
            embed["url"] = link
        return orjson.dumps({"content": _cut(f"[{priority}] {markdown_escape(title)}"),
                             "embeds": [embed], "allowed_mentions": {"parse": []}})
    if fmt == "teams":
        card: dict[str, Any] = {
            "@type": "MessageCard", "@context": "https://schema.org/extensions",
            "summary": _cut(title)[:256] or "notification",
            "title": _cut(markdown_escape(title)),
            "text": _cut(markdown_escape(body)),
            "themeColor": {"urgent": "D13438", "high": "FF8C00"}.get(priority, "0078D7"),
            "sections": [{"facts": [{"name": "priority", "value": priority}]}]}
        if link:
            card["potentialAction"] = [{"@type": "OpenUri", "name": "Open",
                                        "targets": [{"os": "default", "uri": link}]}]
        return orjson.dumps(card)
    # generic: the notification as stored (its JSON is already JSON; nothing to render)
    return orjson.dumps({"user": user, "notification": note})
