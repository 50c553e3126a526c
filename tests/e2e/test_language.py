"""Every string of the components in the user's language (issue 22): the catalogue
(lib/locales/), `connect({locale, strings})` and `lang`, Intl for times and plurals, and
`dir="rtl"`. Real Chromium against a real server; each component is driven into the
states that show its words (toasts with an incident, the center with a group, the
preferences, the offline banner, presence)."""

from __future__ import annotations

import re
import uuid
from html import escape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.e2e.conftest import Harness, fresh_user, wait_connected
from tests.e2e.test_escalation import open_incident
from tests.support.services import need_chromium

pytestmark = pytest.mark.browser

# A page in a language (``lang``, ``dir``) with all four components. ``pseudo=1`` makes
# every catalogue string ⟦bracketed⟧ through connect({strings}) (a pseudo-locale): any
# text a component shows outside brackets did not come from the catalogue.
PAGE = """<!doctype html>
<html lang="{lang}" dir="{dir}"><head><meta charset="utf-8"><title>tocsin i18n</title>
<link rel="icon" href="data:,">
<script type="module">
import {{ connect, ENGLISH }} from "/static/tocsin/tocsin.js";
import "/static/tocsin/define.js";
const p = new URLSearchParams(location.search);
const wrap = (v) => typeof v === "string" ? `\\u27e6${{v}}\\u27e7`
  : Object.fromEntries(Object.entries(v).map(([k, s]) => [k, wrap(s)]));
const strings = p.get("pseudo") ? Object.fromEntries(
  Object.entries(ENGLISH).map(([k, v]) => [k, wrap(v)])) : undefined;
window.tocsinClient = connect({{ token: p.get("token"), strings,
  ...(p.get("locale") ? {{ locale: p.get("locale") }} : {{}}) }});
</script></head>
<body>
<header><tocsin-bell></tocsin-bell><tocsin-presence topic="{topic}"></tocsin-presence></header>
<tocsin-status delay="0"></tocsin-status>
<main><p>Seite</p></main>
<tocsin-toasts max-visible="2" duration-high="60000" duration-medium="60000"></tocsin-toasts>
</body></html>
"""

HOSTS = ["tocsin-bell", "tocsin-toasts", "tocsin-status", "tocsin-presence"]

# Every text node and every aria-label / title / placeholder inside the components'
# shadow roots (and the bell's own label), hidden ones too: each will show at some point.
COLLECT = """(hosts) => {
  const out = [];
  for (const tag of hosts) {
    const host = document.querySelector(tag);
    const root = host?.shadowRoot;
    if (!root) continue;
    const walk = (node) => {
      for (const el of node.querySelectorAll("*")) {
        if (el.tagName === "STYLE") continue;
        for (const a of ["aria-label", "title", "placeholder"]) {
          const v = el.getAttribute(a);
          if (v && v.trim()) out.push([tag, a, v.trim()]);
        }
        for (const c of el.childNodes) {
          const t = c.nodeType === 3 ? c.textContent.trim() : "";
          if (t) out.push([tag, "text", t]);
        }
      }
    };
    walk(root);
  }
  return out;
}"""


def serve(topic: str) -> Any:
    def handler(route: Any) -> None:
        q = parse_qs(urlsplit(route.request.url).query)
        body = PAGE.format(lang=escape(q.get("lang", ["en"])[0]),
                           dir=escape(q.get("dir", ["ltr"])[0]), topic=escape(topic))
        route.fulfill(status=200, content_type="text/html", body=body)
    return handler


def open_page(h: Harness, user: str, topic: str, **params: str) -> Any:
    ctx = h.context(viewport={"width": 1100, "height": 900})
    ctx.route(f"{h.srv.url}/e2e/i18n.html*", serve(topic))
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    q = urlencode({"token": h.srv.token(user, topics=[topic]), **params})
    page.goto(f"{h.srv.url}/e2e/i18n.html?{q}")
    wait_connected(page)
    return page


# What the test publishes: user data, which no catalogue translates.
DATA = ["Disk full", "Mirror lag", "Build broke", "Eve liked your post", "Dana liked your post",
        "Eve", "Dana", "ops", "alert", "like", "build", "monitoring", "social"]


def drive(h: Harness, page: Any, user: str) -> list[tuple[str, str, str]]:
    """Bring the components through their states; every string they showed."""
    seen: list[tuple[str, str, str]] = []

    def snap() -> None:
        seen.extend(tuple(x) for x in page.evaluate(COLLECT, HOSTS))

    # An incident (countdown, Acknowledge), an urgent one with a link, a high one, and a
    # group that grew (the center's group line) and one it shows as a header of two rows.
    open_incident(h.srv, [[user], [user]], wait=600, title="Disk full")
    h.publish(user, "Mirror lag", priority="urgent", url="https://example.com/x", type="alert",
              source="monitoring")
    h.publish(user, "Build broke", priority="high", type="build", source="ops")
    first = h.publish(user, "Eve liked your post", type="like", actor="Eve", groupKey="post-1")
    with h.srv.subscriber(user) as sub:
        r = sub.patch(f"/api/notifications/{first[user]}", json={"read": True})
        assert r.status_code == 200
    h.publish(user, "Dana liked your post", type="like", actor="Dana", groupKey="post-1")
    h.publish(user, "Eve liked your post", type="like", actor="Eve", groupKey="post-1")
    page.wait_for_function("() => tocsinClient.state.notifications.length === 5")
    page.locator("tocsin-toasts .toast.incident .countdown").wait_for()
    page.locator("tocsin-toasts .more").wait_for()
    page.locator("tocsin-presence li[data-user]").wait_for()
    snap()
    page.locator("tocsin-toasts .toast.incident .ack").click()
    page.locator("tocsin-toasts .toast.incident .acked").wait_for()
    snap()
    # The center, with the group expanded, then the preferences.
    page.locator("tocsin-bell button.bell").click()
    page.locator("tocsin-bell .list > li").first.wait_for()
    page.locator("tocsin-bell .group-toggle").click()
    snap()
    # Snooze: the menu, the undo bar, the Snoozed list.
    page.locator("tocsin-bell li.row", has_text="Build broke").locator("button.snooze").click()
    page.locator("tocsin-bell .snooze-menu").wait_for()
    snap()
    page.locator("tocsin-bell .snooze-menu button").first.click()
    page.locator("tocsin-bell .undo-bar button").wait_for()
    page.locator("tocsin-bell input.snoozed-filter").check()
    page.locator("tocsin-bell li.snoozed").wait_for()
    snap()
    page.locator("tocsin-bell li.snoozed button.wake").click()
    page.locator("tocsin-bell .empty:not([hidden])").wait_for()
    snap()
    page.locator("tocsin-bell input.snoozed-filter").uncheck()
    page.locator("tocsin-bell .prefs-btn").click()
    page.locator("tocsin-bell .prefs fieldset").first.wait_for()
    page.locator("tocsin-bell .prefs .dnd-hour").click()
    page.locator("tocsin-bell .prefs .dnd-off").wait_for()
    snap()
    page.keyboard.press("Escape")
    # Offline: the status banner.
    page.context.set_offline(True)
    page.locator("tocsin-status .banner.offline").wait_for()
    snap()
    page.context.set_offline(False)
    page.locator("tocsin-status .banner").wait_for(state="hidden")
    assert page.errors == []  # type: ignore[attr-defined]
    return seen


# IANA time-zone ids (the quiet-hours picker): identifiers, not words
ZONES = re.compile(r"\b[A-Z][A-Za-z_]+/[A-Za-z_/+-]+\b|\bUTC\b|\bGMT\b")


def leftover(page: Any, text: str, extra: list[str]) -> str:
    """``text`` less user data, numbers, punctuation, time zones and what Intl wrote."""
    text = ZONES.sub(" ", text)
    for d in sorted(DATA + extra, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(d)}(?!\w)", " ", text)
    return re.sub(r"[\W\d_]+", " ", text).strip()


def intl_words(page: Any, lang: str) -> list[str]:
    """Words Intl adds in ``lang`` (list conjunctions, AM/PM, weekdays, units)."""
    words: list[str] = page.evaluate("""(lang) => {
      const out = [];
      for (const type of ["conjunction"]) {
        for (const p of new Intl.ListFormat(lang, { type }).formatToParts(["a", "b", "c"]))
          if (p.type === "literal") out.push(...p.value.split(/[\\s,、]+/));
      }
      const d = new Date(2024, 0, 1, 15, 0);
      for (let i = 0; i < 7; i++) {
        const day = new Date(d.getTime() + i * 86400e3);
        out.push(day.toLocaleString(lang, { weekday: "short" }));
      }
      const clock = new Intl.DateTimeFormat(lang, { hour: "numeric", minute: "2-digit" });
      for (const p of clock.formatToParts(d))
        if (p.type === "dayPeriod") out.push(p.value);
      for (const p of new Intl.DateTimeFormat(lang, { hour: "numeric", minute: "2-digit" })
                      .formatToParts(new Date(2024, 0, 1, 9, 0)))
        if (p.type === "dayPeriod") out.push(p.value);
      for (const unit of ["second", "minute", "hour", "day"]) for (const n of [1, 5, 15])
        out.push(new Intl.NumberFormat(lang, { style: "unit", unit, unitDisplay: "long" })
          .format(n).replace(/[\\d.,\\s]+/g, " ").trim());
      return out.filter(Boolean);
    }""", lang)
    return words


def unbracket(text: str) -> str:
    """``text`` without its ⟦catalogue⟧ parts (innermost first: they nest)."""
    while True:
        out = re.sub(r"\u27e6[^\u27e6\u27e7]*\u27e7", " ", text)
        if out == text:
            return out
        text = out


def test_every_string_a_component_shows_is_in_the_catalogue(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    topic = f"room-{uuid.uuid4().hex[:8]}"
    page = open_page(h, user, topic, pseudo="1")
    seen = drive(h, page, user)
    initials = page.evaluate(
        "async (u) => (await import('/static/tocsin/components/presence.js')).initials(u)", user)
    extra = [user, initials, *intl_words(page, "en")]
    stray = sorted({(tag, where, text) for tag, where, text in seen
                    if leftover(page, unbracket(text), extra)})
    assert not stray, "shown but not from the catalogue:\n" + "\n".join(map(str, stray))
    # and the pseudo-locale reached every component
    assert {tag for tag, _, text in seen if "\u27e6" in text} == set(HOSTS)


def english_fragments(page: Any, lang: str) -> list[str]:
    """Pieces of English strings (between placeholders) the locale words differently."""
    frags: list[str] = page.evaluate("""async (lang) => {
      const en = (await import("/static/tocsin/lib/locales/en.js")).default;
      const other = (await import(`/static/tocsin/lib/locales/${lang}.js`)).default;
      const forms = (v) => typeof v === "string" ? [v] : Object.values(v);
      const out = new Set();
      for (const [k, v] of Object.entries(en)) {
        const mine = new Set(forms(other[k] ?? ""));
        for (const s of forms(v)) {
          if (mine.has(s)) continue;
          for (const f of s.split(/\\{\\w+\\}/)) {
            const t = f.trim().replace(/^[^\\w]+|[^\\w…]+$/g, "");
            if (/[A-Za-z]{3,}/.test(t)) out.add(t);
          }
        }
      }
      return [...out];
    }""", lang)
    return frags


@pytest.mark.parametrize("how", ["lang", "locale"])
def test_a_german_page_shows_no_english(h: Harness, how: str) -> None:
    """`<html lang="de">` (or connect({locale: "de"}) on an English page): bell, center,
    preferences, toasts, status and presence are all German."""
    need_chromium()
    user = fresh_user()
    topic = f"raum-{uuid.uuid4().hex[:8]}"
    params = {"lang": "de"} if how == "lang" else {"lang": "en", "locale": "de"}
    page = open_page(h, user, topic, **params)
    seen = drive(h, page, user)
    frags = english_fragments(page, "de")
    assert "Mark all as read" in frags and "Notifications" in frags
    english = sorted({(tag, where, text, f) for tag, where, text in seen for f in frags
                      if re.search(rf"(?<!\w){re.escape(f)}(?!\w)", ZONES.sub(" ", text))
                      and not any(f in d for d in DATA)})
    assert not english, "English on a German page:\n" + "\n".join(map(str, english))
    texts = [t for _, _, t in seen]
    for german in ("Alle als gelesen markieren", "Einstellungen", "Nicht stören",
                   "Sie sind offline \u2013 Neuigkeiten kommen an, sobald die Verbindung"
                   " zurück ist",
                   "Von Ihnen bestätigt"):
        assert any(german in t for t in texts), german
    # Intl in German: the unread count's plural, the countdown's words, "gerade eben"
    assert any(t.startswith("Benachrichtigungen, ") and "ungelesen" in t for t in texts)
    assert any("Eskaliert zur nächsten Bereitschaft in" in t for t in texts)
    assert "gerade eben" in texts


def test_apps_override_strings_and_add_a_language(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    page = h.open(h.context(), user)
    got = page.evaluate("""async () => {
      const { addLocale, translator } = await import("/static/tocsin/tocsin.js");
      addLocale("pt", { "bell.markAll": "Marcar tudo como lido" });
      const pt = translator("pt-BR");
      const fr = translator("fr", { "bell.markAll": "Lu !" });
      return [pt.t("bell.markAll"), pt.t("bell.preferences"), fr.t("bell.markAll"),
              fr.t("bell.preferences"), translator("ja").t("bell.labelUnread", { count: 3 }),
              translator("fr").t("bell.labelUnread", { count: 2 })];
    }""")
    assert got == ["Marcar tudo como lido", "Preferences", "Lu !", "Préférences",
                   "通知、未読 3 件", "Notifications, 2 non lues"]


def test_right_to_left_mirrors_the_components(h: Harness) -> None:
    """`dir="rtl"`: the center opens towards the inline start, rows read right to left
    (the unread dot on the right), toasts keep their priority edge at the start."""
    need_chromium()
    user = fresh_user()
    topic = f"room-{uuid.uuid4().hex[:8]}"
    page = open_page(h, user, topic, lang="ar", dir="rtl")
    h.publish(user, "Mirror lag", priority="high")
    toast = page.locator("tocsin-toasts .toast").first
    toast.wait_for()
    edge = toast.evaluate(
        "el => [getComputedStyle(el).borderRightWidth, getComputedStyle(el).borderLeftWidth]")
    assert edge[0] == "4px" and edge[1] == "1px", edge
    host = page.locator("tocsin-toasts").bounding_box()
    assert host is not None and host["x"] < 100  # at the inline end: the left in RTL
    page.locator("tocsin-bell button.bell").click()
    row = page.locator("tocsin-bell li.row").first
    dot = row.locator(".dot").bounding_box()
    text = row.locator(".text").bounding_box()
    assert dot is not None and text is not None and dot["x"] > text["x"] + text["width"] - 1
    align = row.locator(".open").evaluate("el => getComputedStyle(el).textAlign")
    assert align in ("start", "right")
    assert page.errors == []  # type: ignore[attr-defined]
