"""Property tests for the small parsers people type into: ids, durations, ISO weeks and the
slash command's argument handling. Arbitrary text may only ever raise the documented error."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from incidentbot.digest.weeks import DigestWeekError, iso_week, normalize_week, parse_week, week_bounds
from incidentbot.ids import IdError, format_id, parse_id
from incidentbot.settings import parse_duration

any_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=60)
spaces = st.text(alphabet=" \t\n\r\x0b\x0c", max_size=3)
PREFIXES = ["S", "H", "P"]
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
FAST = settings(max_examples=200, deadline=None)


# -- ids ------------------------------------------------------------------------------------------


@FAST
@given(any_text, st.sampled_from([None, "S", "H", "P"]))
@example("H-٣", None)  # a non-ASCII digit
@example("S-" + "9" * 30, None)
@example("H-0", "H")
def test_parse_id_only_raises_id_error(text, expect):
    try:
        prefix, n = parse_id(text, expect=expect)
    except IdError as exc:
        assert isinstance(exc, ValueError) and str(exc).startswith("expected an id like")
        return
    assert prefix in PREFIXES
    assert expect is None or prefix == expect
    assert isinstance(n, int) and n >= 0
    # What was accepted is the canonical id up to case, surrounding whitespace, the optional dash
    # and leading zeros, written with ASCII digits.
    typed = text.strip().upper()
    assert typed[0] == prefix
    digits = typed[1:].removeprefix("-")
    assert digits.isascii() and digits.isdigit() and int(digits) == n
    assert parse_id(format_id(prefix, n)) == (prefix, n)


@FAST
@given(st.sampled_from(PREFIXES), st.integers(1, 10**9))
def test_id_round_trip(prefix, n):
    assert parse_id(format_id(prefix, n)) == (prefix, n)
    assert parse_id(format_id(prefix, n), expect=prefix) == (prefix, n)


@FAST
@given(st.sampled_from(PREFIXES), st.integers(1, 10**9), spaces, spaces, st.booleans(), st.booleans())
def test_id_tolerates_case_whitespace_and_missing_dash(prefix, n, before, after, lower, dash):
    text = f"{before}{prefix.lower() if lower else prefix}{'-' if dash else ''}{n}{after}"
    assert parse_id(text) == (prefix, n)


@FAST
@given(st.sampled_from(PREFIXES), st.sampled_from(PREFIXES), st.integers(1, 10**9))
def test_id_expect_rejects_other_kinds(prefix, expect, n):
    if prefix == expect:
        assert parse_id(f"{prefix}-{n}", expect=expect) == (prefix, n)
    else:
        with pytest.raises(IdError, match=f"{expect}-n"):
            parse_id(f"{prefix}-{n}", expect=expect)


# -- durations ------------------------------------------------------------------------------------


@FAST
@given(any_text)
@example("999999999999999999999w")
@example("9" * 5000 + "s")
@example("٣h")
def test_parse_duration_only_raises_value_error(text):
    try:
        td = parse_duration(text)
    except ValueError as exc:
        assert str(exc)
        return
    assert isinstance(td, timedelta) and td >= timedelta(0)
    # A duration the parser accepts can be added to and subtracted from "now" (mute, --closes, prune).
    now = datetime.now(timezone.utc)
    assert now - td <= now <= now + td


@FAST
@given(st.integers(0, 5_000), st.sampled_from(sorted(UNITS)), spaces, spaces, spaces)
def test_parse_duration_valid_forms(n, unit, before, middle, after):
    assert parse_duration(f"{before}{n}{middle}{unit}{after}") == timedelta(seconds=n * UNITS[unit])


@pytest.mark.parametrize("text", ["999999999999999999999w", "99999999999d", "1" + "0" * 30 + "s", "9" * 5000 + "m"])
def test_parse_duration_huge_is_a_clean_error(text):
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert not isinstance(info.value, OverflowError)


# -- ISO weeks ------------------------------------------------------------------------------------


@FAST
@given(any_text)
@example("9999-W52")
@example("0001-W01")
@example("0000-W01")
@example("2025-W54")
def test_parse_week_only_raises_week_error(text):
    try:
        year, week = parse_week(text)
    except DigestWeekError as exc:
        assert str(exc)
        return
    monday = date.fromisocalendar(year, week, 1)
    assert monday.isocalendar()[:2] == (year, week)
    # Anything parse_week accepts, the digest can compute bounds for in any time zone.
    for tz in ("UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"):
        start, end = week_bounds(normalize_week(text), tz)
        assert end - start >= timedelta(days=6)
        start.astimezone(timezone.utc), end.astimezone(timezone.utc)


@FAST
@given(st.dates(min_value=date(1970, 1, 1), max_value=date(9000, 12, 31)), spaces, spaces, st.booleans(), st.booleans())
def test_week_round_trip(day, before, after, dash, lower):
    canon = iso_week(day)
    year, week, _ = day.isocalendar()
    typed = f"{year:04d}{'-' if dash else ''}{'w' if lower else 'W'}{week:0{2 if dash else 1}d}"
    assert parse_week(before + typed + after) == (year, week)
    assert normalize_week(before + typed + after) == canon
    assert iso_week(date.fromisocalendar(*parse_week(canon), 1)) == canon


# -- the slash command router ---------------------------------------------------------------------

COMMANDS = [
    "help",
    "list",
    "show",
    "signatures",
    "vote",
    "resolve",
    "reject",
    "reopen",
    "merge",
    "split",
    "unmerge",
    "mute",
    "unmute",
    "link",
    "unlink",
    "runbooks",
    "digest",
    "HELP",
    "Show",
    "nope",
    "",
]
tokens = st.one_of(
    st.sampled_from(
        [
            "H-1",
            "S-1",
            "P-1",
            "h7",
            "S-999999999999",
            "H-0",
            "X-1",
            "for",
            "24h",
            "0s",
            "999999999999999999999w",
            "99999999d",
            "--closes",
            "--open",
            "--named",
            "--anonymous",
            "close",
            "stats",
            "preview",
            "2025-W03",
            "9999-W52",
            "0001-W01",
            "2025-W99",
            "new",
            "top",
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00+14:00",
            "2025-03-01T17:00Z",
            '"',
            "'",
            "\\",
            '""',
            "—",
            "\x00",
            "\u2028",
            "🙂",
            "<@U123>",
            "&lt;",
            "*",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x10FFFF), max_size=12),
)
command_text = st.one_of(
    any_text,
    st.tuples(st.sampled_from(COMMANDS), st.lists(tokens, max_size=5)).map(lambda t: " ".join([t[0], *t[1]])),
)


@pytest.fixture
def router(request, db_url):
    if db_url.startswith("postgresql"):
        pytest.skip("the router property test runs on SQLite only, to stay quick")
    runtime = request.getfixturevalue("runtime")
    from incidentbot.slack.commands import CommandRouter

    admins = {"UADMIN"}
    return CommandRouter(runtime, is_admin=lambda user: user in admins)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(text=command_text, user=st.sampled_from(["UADMIN", "UBOB"]))
@example(text="vote --closes 999999999999999999999w", user="UBOB")
@example(text="vote --closes 99999999d", user="UBOB")
@example(text="vote --closes 9999-12-31T23:59:59-14:00", user="UBOB")
@example(text="mute S-1 for 999999999999999999999w", user="UADMIN")
@example(text="digest preview 9999-W52", user="UBOB")
@example(text="digest preview 0001-W01", user="UBOB")
@example(text='show "H-1', user="UBOB")
def test_router_never_raises(router, text, user):
    from incidentbot.slack.commands import Invocation, Reply

    reply = router.handle(Invocation(user=user, channel="C123", text=text))
    assert isinstance(reply, Reply)
    assert isinstance(reply.text, str) and reply.text.strip()
    assert reply.view is not None or reply.blocks


@pytest.mark.parametrize(
    "text",
    [
        "vote --closes 999999999999999999999w",
        "mute S-1 for 999999999999999999999w",
        "digest preview 9999-W52",
        "digest preview 0001-W01",
        "show H-٣",
    ],
)
def test_router_answers_odd_input_with_a_warning(router, text):
    from incidentbot.slack.commands import Invocation

    reply = router.handle(Invocation(user="UADMIN", channel="C123", text=text))
    assert reply.text.startswith(":warning:"), reply.text
