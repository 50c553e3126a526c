"""The one rule for text a client sends, applied to every body field, path and query
parameter and token claim that reaches the store (docs/deploy.md, "Security").

- **Names** (types, user ids and recipients, actor, source, groupKey,
  idempotencyKey, policy names and targets, notification, incident and
  subscription ids): no control characters (C0 U+0000-U+001F, DEL, C1
  U+0080-U+009F) and no lone surrogates. A name is matched, listed and shown as a
  label; a control character in one is never meant, and some break what they reach
  (an email's headers, an unsubscribe page, a log line).
- **Free text** (title, body): anything but NUL and lone surrogates; line breaks
  and tabs stay.

Why here and not in the store: PostgreSQL refuses NUL in ``text`` (and a lone
surrogate cannot be encoded as UTF-8 at all) with a driver error, which was a 500,
while SQLite stores it. Checked before any store call, both databases answer the
same 400 naming the field. Python's ``json`` (FastAPI's bodies) and percent-decoded
paths can both carry a lone surrogate, so it is refused here too.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_NOT_IN_NAME = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_IN_TEXT = re.compile("[\x00\ud800-\udfff]")
NAME_RULE = "must not contain control characters (U+0000-U+001F, U+007F-U+009F)"
TEXT_RULE = "must not contain NUL (U+0000)"


def name_error(v: str) -> str | None:
    """Why ``v`` is not a valid name, or ``None``."""
    found = _NOT_IN_NAME.search(v)
    if found is None:
        return None
    c = found.group()
    if "\ud800" <= c <= "\udfff":
        return "must be valid Unicode text (no lone surrogate)"
    return f"{NAME_RULE}; found U+{ord(c):04X}"


def check_name(v: str) -> str:
    """A validator (``ValueError``) for names: see the module docstring."""
    why = name_error(v)
    if why is not None:
        raise ValueError(why)
    return v


def check_names(v: list[str] | None) -> list[str] | None:
    """:func:`check_name` for each item of a list: one search over the joined text
    (a 10,000-recipient publish pays one regex pass, not 10,000 calls), then the
    index of the first bad item for the message."""
    if v and _NOT_IN_NAME.search("".join(v)):
        for i, item in enumerate(v):
            why = name_error(item)
            if why is not None:
                raise ValueError(f"item {i} {why}")
    return v


def check_text(v: str) -> str:
    """A validator for free text (title, body): see the module docstring."""
    found = _NOT_IN_TEXT.search(v)
    if found is not None:
        if found.group() != "\x00":
            raise ValueError("must be valid Unicode text (no lone surrogate)")
        raise ValueError(TEXT_RULE)
    return v


Name = Annotated[str, AfterValidator(check_name)]
"""A ``str`` field or parameter holding a name."""
Text = Annotated[str, AfterValidator(check_text)]
"""A ``str`` field holding free text."""
