"""The registry is the one list of channels: the settings, the flags, the publish
hook, the routes and the preferences' channel names all follow it."""

from __future__ import annotations

import pytest

from tocsin.attention.model import STREAM_CHANNELS, parse_preferences
from tocsin.channels.registry import CHANNELS
from tocsin.cli import SERVER_FLAGS
from tocsin.config import SECRET_FIELDS, Settings
from tocsin.errors import TocsinError
from tocsin.service import Tocsin


def test_every_registered_channel_is_a_preferences_channel() -> None:
    # attention learns the names from the assembly point: no list to edit elsewhere
    names = Tocsin(Settings()).attention.channel_names
    assert names == STREAM_CHANNELS + tuple(c.name for c in CHANNELS)
    for name in names:
        parse_preferences({"types": {"t": {"channels": [name]}}}, names)
    with pytest.raises(TocsinError) as refused:
        parse_preferences({"types": {"t": {"channels": ["fax"]}}}, names)
    assert refused.value.field == "types.t.channels"


def test_settings_and_flags_come_from_the_registry() -> None:
    flags = {field for field, _, _ in SERVER_FLAGS}
    for spec in CHANNELS:
        fields = set(spec.settings.model_fields)
        assert fields <= set(Settings.model_fields)
        assert {field for field, _, _ in spec.flags} == fields  # one flag per setting
        assert fields <= flags
        assert spec.secret_fields <= SECRET_FIELDS


def test_the_node_builds_every_registered_channel_in_order() -> None:
    tocsin = Tocsin(Settings())
    assert [c.name for c in tocsin.channels] == [c.name for c in CHANNELS]
    # the low-priority rule is expressed by intrusiveness: email is the gentler
    assert tocsin.email.intrusiveness < tocsin.push.intrusiveness
