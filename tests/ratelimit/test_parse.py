"""The one parser for N/s:burst, and the settings that use it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tocsin.config import Settings, describe_error
from tocsin.ratelimit import Rate, RateLimited, retry_after
from tocsin.units import parse_rate


@pytest.mark.parametrize(("text", "rate"), [
    ("10/s:50", Rate(10.0, 50)), (" 2.5 / s : 7 ", Rate(2.5, 7)), ("10/s", Rate(10.0, 10)),
    ("0.5/s", Rate(0.5, 1)), ("120/m:10", Rate(2.0, 10)), ("3600/h", Rate(1.0, 1)),
    ("off", None), ("OFF", None), ("", None),
])
def test_parse_rate(text: str, rate: Rate | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["10", "fast", "10/d", "-1/s", "0/s", "10/s:0", "10/s:1.5",
                                  "1/s:2:3"])
def test_bad_rates_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a rate: .*"):
        parse_rate(text)


def test_bad_setting_names_the_variable() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(rate_reads="lots")
    assert describe_error(info.value).startswith(
        "invalid TOCSIN_RATE_READS: not a rate: 'lots' (use N/s:burst")


def test_defaults_limit_subscribers_not_publishers() -> None:
    fields = Settings.model_fields
    assert parse_rate(str(fields["rate_topic_posts"].default)) == Rate(10.0, 50)
    assert parse_rate(str(fields["rate_reads"].default)) == Rate(20.0, 100)
    assert parse_rate(str(fields["rate_publish"].default)) is None


@pytest.mark.parametrize(("wait", "header"), [(0.0001, 1), (0.99, 1), (1.0, 1), (1.01, 2),
                                              (29.5, 30)])
def test_retry_after_is_whole_seconds_at_least_one(wait: float, header: int) -> None:
    assert retry_after(wait) == header
    assert RateLimited(wait).headers == ((b"retry-after", str(header).encode()),)
