"""The bodies each format posts: the receiver's markup escaped, links only http(s)."""

from __future__ import annotations

import json

from tocsin.channels.webhook.formats import render, safe_link, slack_escape

NOTE = {"id": "n1", "type": "deploy", "title": "<b>Ship</b> @everyone [x](javascript:alert(1))",
        "body": "a & b <!here>", "priority": "urgent", "url": "javascript:alert(1)",
        "timestamp": 1}


def test_only_absolute_http_links_are_kept() -> None:
    assert safe_link("https://a.example/x?y=1") == "https://a.example/x?y=1"
    for bad in ("javascript:alert(1)", "/relative", "https://a.example/ x", "data:,x", 5,
                "http://a.example/\nx", "mailto:a@example.com"):
        assert safe_link(bad) is None, bad


def test_slack_escapes_its_control_characters_and_drops_a_bad_link() -> None:
    assert slack_escape("<!channel> & >") == "&lt;!channel&gt; &amp; &gt;"
    msg = json.loads(render("slack", NOTE, "alice"))
    text = msg["blocks"][0]["text"]["text"]
    assert "<" not in text and "&lt;!here&gt;" in text and "a &amp; b" in text
    assert len(msg["blocks"]) == 2  # no link block for javascript:


def test_teams_and_discord_escape_markdown_html_and_mentions() -> None:
    card = json.loads(render("teams", NOTE, "alice"))
    assert card["@type"] == "MessageCard" and "potentialAction" not in card
    assert "<b>" not in card["title"] and "&lt;b&gt;" in card["title"]
    assert "\\[x\\]\\(javascript:alert\\(1\\)\\)" in card["title"]
    discord = json.loads(render("discord", {**NOTE, "url": "https://a.example"}, "alice"))
    assert "@everyone" not in discord["content"] and discord["embeds"][0]["url"] == \
        "https://a.example"
    assert discord["allowed_mentions"] == {"parse": []}


def test_generic_posts_the_notification_json() -> None:
    assert json.loads(render("generic", NOTE, "alice")) == {"user": "alice", "notification": NOTE}
