"""The one RFC 3339 reader and writer (domain/timestamps.py) that every entrypoint uses."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from chainproof.domain.timestamps import MissingTimeZone, parse_rfc3339, rfc3339

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22T12:00:00Z",
        "2026-11-22T12:00:00z",
        "2026-11-22T12:00:00+00:00",
        "2026-11-22T14:00:00+02:00",
        "2026-11-22T12:00:00.000000000Z",
        "2026-11-22T12:00",  # no zone: UTC
    ],
)
def test_spellings_of_one_instant(text: str) -> None:
    assert parse_rfc3339(text) == NOON


def test_the_offset_is_kept_and_nanoseconds_are_cut_to_microseconds() -> None:
    parsed = parse_rfc3339("2019-10-01T13:06:26.158219163+02:00")
    assert parsed.utcoffset() == timedelta(hours=2)
    assert parsed.microsecond == 158219


def test_a_time_without_zone_can_be_refused() -> None:
    with pytest.raises(MissingTimeZone):
        parse_rfc3339("2026-11-22T12:00:00", assume_utc=False)
    assert parse_rfc3339("2026-11-22T12:00:00Z", assume_utc=False) == NOON


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "12:00", "Z"])
def test_what_is_no_time_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="isoformat|must be in"):
        parse_rfc3339(text)


def test_written_in_utc_with_z_and_read_back() -> None:
    east = datetime(2026, 11, 22, 14, 0, 0, 500, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(east) == "2026-11-22T12:00:00.000500Z"
    assert rfc3339(NOON) == "2026-11-22T12:00:00Z"
    assert parse_rfc3339(rfc3339(east)) == east
