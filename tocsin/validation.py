"""Pydantic's validation errors as one code from the error table, naming the field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tocsin.errors import TocsinError


def error_from_validation(errors: Sequence[Any], *, located: bool = True) -> TocsinError:
    """Map the first error to a :class:`TocsinError`. ``located``: FastAPI's errors,
    whose ``loc`` starts with where the value came from (``body``, ``query``, …);
    a model's own errors start with the field (which may itself be named ``body``)."""
    err: dict[str, Any] = dict(errors[0]) if errors else {}
    kind = str(err.get("type", ""))
    loc = [str(p) for p in err.get("loc", ())]
    if located and loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]  # where it came from; the rest names the field
    field = ".".join(loc) or None
    msg = str(err.get("msg", "invalid request"))
    if kind == "json_invalid" or (kind in ("model_attributes_type", "model_type") and not loc):
        return TocsinError("malformed_json", "The request body is not valid JSON: " + msg)
    if kind == "missing":
        return TocsinError("missing_field", f"'{field}' is required.", field)
    if field == "recipients" and kind == "too_long":
        return TocsinError("too_many_recipients", field=field)
    if kind in ("string_too_long", "too_long"):
        return TocsinError("too_long", f"'{field}': {msg}.", field)
    if "larger than" in msg:
        return TocsinError("too_large", f"'{field}': {msg.removeprefix('Value error, ')}.", field)
    return TocsinError("invalid_field", f"'{field}': {msg.removeprefix('Value error, ')}.", field)
