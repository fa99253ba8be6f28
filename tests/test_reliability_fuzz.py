"""Fuzz: schemathesis against the service's own OpenAPI document on a live loopback server, and
hypothesis properties of Slack text escaping, Block Kit rendering and the ingest parsers."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from incidentbot.ingest import from_alertmanager
from incidentbot.ingest.schema import validate_batch
from incidentbot.localslack import validate_message
from incidentbot.slack import polls, views
from incidentbot.blocks import HEADER_LIMIT, SECTION_LIMIT, cut, esc, plain
from tests.conftest import event

# -- schemathesis: the API against its own schema -------------------------------------------------


def test_api_never_5xx_and_answers_match_the_schema(live_server):
    """Every operation in /openapi.json, fuzzed with schemathesis's generated cases (valid and
    invalid), sent with the bearer token to a live loopback server."""
    seed = [
        event(event_id=f"s{i}", rank=i, host=f"node{i % 3}", message=m)
        for i, m in enumerate(
            [
                "RuntimeError: CUDA error: an illegal memory access was encountered",
                "NVRM: Xid (PCI:0000:91:00): 79, pid=1896, GPU has fallen off the bus.",
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
            ]
            * 3
        )
    ]
    r = httpx.post(
        live_server.url + "/v1/events", json={"events": seed}, headers={"Authorization": "Bearer test-token"}
    )
    assert r.status_code == 202
    schema = schemathesis.openapi.from_url(live_server.url + "/openapi.json")
    seen, calls = [], []
    for result in schema.get_all_operations():
        op = result.ok()
        seen.append(op.label)

        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
        )
        @given(
            case=st.one_of(
                op.as_strategy(generation_mode=GenerationMode.POSITIVE),
                op.as_strategy(generation_mode=GenerationMode.NEGATIVE),
            )
        )
        def run(case):
            response = case.call_and_validate(
                base_url=live_server.url,
                headers={"Authorization": "Bearer test-token"},
                checks=[not_a_server_error, response_schema_conformance],
            )
            calls.append((op.label, response.status_code))

        run()
    assert len(calls) >= 10 * len(seen)
    statuses = {status for _, status in calls}
    assert {200, 202} <= statuses and statuses & {400, 404, 413, 422}, statuses
    print(f"schemathesis: {len(calls)} requests over {len(seen)} operations, statuses {sorted(statuses)}")
    assert {"POST /v1/events", "POST /v1/alertmanager", "GET /v1/events", "GET /v1/signatures", "GET /healthz"} <= set(
        seen
    ), seen


# -- Slack text escaping ---------------------------------------------------------------------------

ANGLE = st.lists(
    st.sampled_from(list("<>&;!@#|amplgt ") + ["&amp;", "&lt;", "&gt;", "<!channel>", "<@U1>", "é", "🔥"]), max_size=100
).map("".join)
ANY_TEXT = st.one_of(st.text(), ANGLE, st.text(alphabet=st.characters(codec="utf-8"), max_size=5000))
ENTITY_SPLIT = re.compile(r"&(?!amp;|lt;|gt;)")


def _unescape(s: str) -> str:
    return s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@given(ANY_TEXT)
def test_esc_leaves_no_control_character_and_round_trips(text):
    out = esc(text)
    assert "<" not in out and ">" not in out
    assert not ENTITY_SPLIT.search(out)
    assert _unescape(out) == text
    assert "<" not in plain(text) and ">" not in plain(text)


@given(ANY_TEXT, st.integers(min_value=0, max_value=4000), st.sampled_from(["", " (more)", "…see S-1"]))
def test_cut_respects_the_limit_and_never_splits_an_entity(text, limit, more):
    escaped = esc(text)
    out = cut(escaped, limit, more=more)
    if len(escaped) <= limit:
        assert out == escaped
    else:
        assert len(out) <= max(limit, len("…" + more))
        assert out.endswith("…" + more)
        head = out[: len(out) - len("…" + more)]
        assert escaped.startswith(head)
        assert not ENTITY_SPLIT.search(head), head[-10:]
    assert "<" not in out and ">" not in out


# -- Block Kit rendering with arbitrary text -------------------------------------------------------

# Long texts are built by repetition: cheap to generate, and past every Slack limit.
LONG = st.builds(
    lambda t, n: t * n, st.one_of(st.text(min_size=1, max_size=12), ANGLE.filter(bool)), st.integers(200, 2000)
)
TEXT = st.one_of(st.text(max_size=100), ANGLE, LONG)
TITLE = TEXT.map(lambda t: t[:512])  # titles and option labels are varchar(512) columns, questions 1000
QUESTION = TEXT.map(lambda t: t[:1000])
SHORT = st.one_of(st.text(min_size=1, max_size=40), ANGLE.filter(bool))
WHEN = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc))
COUNT = st.integers(min_value=0, max_value=10**12)


# Big generated texts make shrinking slow; a failure prints its example without it.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
STATUS = st.sampled_from(
    ["open", "confirmed", "resolved", "rejected", "regressed", "obsolete"]
)  # set by the service, not typed


def _check(text: str, blocks: list[dict]) -> None:
    problem = validate_message({"text": text, "blocks": blocks})
    assert not problem, problem
    assert len(blocks) <= 50
    for b in blocks:
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= HEADER_LIMIT
        if b["type"] == "section" and "text" in b:
            assert len(b["text"]["text"]) <= SECTION_LIMIT
    for token in re.findall(r"<[^<>]*>", text + repr(blocks)):
        assert token.startswith(("<!date^", "<@", "<http")), token


@settings(
    max_examples=60,
    deadline=None,
    phases=NO_SHRINK,
    suppress_health_check=[HealthCheck.data_too_large, HealthCheck.too_slow],
)
@given(
    title=TITLE,
    template=TEXT,
    example=st.one_of(st.none(), TEXT),
    category=SHORT,
    cause=SHORT,
    n=COUNT,
    first=WHEN,
    last=WHEN,
    runbook=st.one_of(st.none(), st.fixed_dictionaries({"id": SHORT, "title": TITLE})),
    muted=st.booleans(),
)
def test_signature_alert_always_valid(title, template, example, category, cause, n, first, last, runbook, muted):
    sig = {
        "id": "S-1",
        "title": title,
        "template": template,
        "example": example,
        "category": category,
        "cause_class": cause,
        "count": n,
        "job_count": n,
        "host_count": n,
        "rank_count": n,
        "first_seen": first,
        "last_seen": last,
    }
    _check(*views.signature_alert(sig, runbook=runbook, public_url="http://127.0.0.1:8000", muted=muted))


@settings(
    max_examples=60,
    deadline=None,
    phases=NO_SHRINK,
    suppress_health_check=[HealthCheck.data_too_large, HealthCheck.too_slow],
)
@given(
    title=TITLE,
    status=STATUS,
    evidence=st.lists(TEXT, max_size=12),
    scope=st.dictionaries(SHORT, st.lists(SHORT, max_size=12), max_size=4),
    sigs=st.lists(st.fixed_dictionaries({"title": TITLE, "count": COUNT}), max_size=14),
    resolution=st.fixed_dictionaries(
        {},
        optional={
            "cause": TEXT,
            "fix": TEXT,
            "link": st.one_of(TEXT, TEXT.map(lambda t: "https://x.example/" + t)),
            "fixed_in": SHORT,
            "by": SHORT,
            "rejected_reason": TEXT,
        },
    ),
    polls_=st.lists(
        st.fixed_dictionaries(
            {
                "status": st.sampled_from(["open", "closed"]),
                "outcome_text": TEXT,
                "options": st.lists(st.fixed_dictionaries({"label": TITLE, "votes": COUNT}), max_size=6),
            }
        ),
        max_size=4,
    ),
    timeline=st.lists(st.fixed_dictionaries({"at": WHEN, "kind": SHORT, "text": TEXT}), max_size=8),
    confidence=st.floats(min_value=0, max_value=1),
)
def test_hypothesis_blocks_always_valid(title, status, evidence, scope, sigs, resolution, polls_, timeline, confidence):
    h = {
        "id": "H-1",
        "title": title,
        "status": status,
        "cause_class": "software",
        "confidence": confidence,
        "event_count": 5,
        "scope": scope,
        "evidence": evidence,
        "resolution": resolution,
    }
    signatures = [dict(s, id=f"S-{i}") for i, s in enumerate(sigs)]
    polls_list = [dict(p, id=f"P-{i}") for i, p in enumerate(polls_)]
    _check(
        *views.hypothesis_blocks(
            h,
            signatures=signatures,
            runbooks=[],
            polls=polls_list,
            public_url="http://127.0.0.1:8000",
            timeline=timeline,
        )
    )


@settings(
    max_examples=60,
    deadline=None,
    phases=NO_SHRINK,
    suppress_health_check=[HealthCheck.data_too_large, HealthCheck.too_slow],
)
@given(
    question=QUESTION,
    labels=st.lists(TITLE, min_size=1, max_size=8),
    votes=st.lists(COUNT, min_size=8, max_size=8),
    status=st.sampled_from(["open", "closed"]),
    anonymous=st.booleans(),
    creator=SHORT,
    voters=st.lists(SHORT, max_size=40),
    closes=st.one_of(st.none(), WHEN),
    outcome=st.fixed_dictionaries(
        {},
        optional={
            "truth": st.integers(1, 10**6).map(lambda n: f"H-{n}"),
            "share_for_truth": st.floats(0, 1),
            "room_right": st.booleans(),
            "underdog": st.booleans(),
        },
    ),
)
def test_poll_blocks_always_valid(question, labels, votes, status, anonymous, creator, voters, closes, outcome):
    options = [{"id": i + 1, "label": label, "votes": votes[i]} for i, label in enumerate(labels)]
    poll = {
        "id": "P-1",
        "question": question,
        "options": options,
        "status": status,
        "anonymous": anonymous,
        "creator": creator,
        "closes_at": closes,
        "closed_at": closes,
        "outcome": outcome,
    }
    _check(*polls.poll_blocks(poll, voters={o["id"]: voters for o in options}, public_url="http://127.0.0.1:8000"))


# -- parsers ---------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
EVENTISH = st.fixed_dictionaries(
    {},
    optional={
        "event_id": JSON | st.text(max_size=200),
        "job_id": JSON | st.text(max_size=300),
        "message": JSON | st.text(),
        "time": JSON | st.just("2025-01-01T00:00:00") | st.just("not a time"),
        "rank": JSON,
        "step": JSON,
        "host": JSON,
        "versions": JSON | st.dictionaries(st.text(max_size=70), st.text(max_size=130)),
        "attributes": JSON,
        "kind": JSON,
        "surprise": JSON,
    },
)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.one_of(JSON, EVENTISH), max_size=8), st.booleans())
def test_validate_batch_never_raises(items, clean):
    events, errors = validate_batch(items, clean=clean)
    assert (not events) or (not errors)
    if not errors:
        assert len(events) == len(items)
    for e in errors:
        assert 0 <= e.index < len(items) and isinstance(e.message, str)


ALERT = st.fixed_dictionaries(
    {},
    optional={
        "status": JSON | st.sampled_from(["firing", "resolved"]),
        "labels": JSON | st.dictionaries(st.text(max_size=10), JSON, max_size=4),
        "annotations": JSON | st.dictionaries(st.sampled_from(["description", "summary", "message"]), JSON, max_size=3),
        "fingerprint": JSON | st.text(max_size=40),
        "startsAt": JSON | st.just("2025-01-01T00:00:00Z"),
        "generatorURL": JSON,
    },
)
PAYLOAD = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {},
        optional={
            "version": JSON | st.just("4"),
            "status": JSON,
            "alerts": JSON | st.lists(ALERT, max_size=5),
            "commonLabels": JSON,
            "groupLabels": JSON,
            "externalURL": JSON,
        },
    ),
)


@settings(max_examples=120, deadline=None)
@given(PAYLOAD)
def test_from_alertmanager_raises_only_value_error(payload):
    try:
        converted = from_alertmanager(payload)
    except ValueError:
        return
    validate_batch(list(converted))


VALIDISH = st.fixed_dictionaries(
    {"job_id": st.text(min_size=1, max_size=20), "message": st.text(min_size=1, max_size=60)},
    optional={
        "event_id": st.text(min_size=1, max_size=20),
        "rank": st.integers(-2, 10**20) | st.floats() | st.booleans() | st.text(max_size=3),
        "step": st.integers(0, 10**6) | st.none(),
        "time": st.sampled_from(["2025-01-01T00:00:00", "2025-01-01T00:00:00+02:00", "1969-12-31T00:00:00Z", "x"]),
        "host": st.text(max_size=10) | st.none(),
        "versions": st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(), max_size=3),
        "attributes": JSON,
        "kind": st.text(max_size=5),
        "surprise": JSON,
    },
)


@settings(max_examples=200, deadline=None)
@given(st.lists(VALIDISH, min_size=1, max_size=6), st.sampled_from([None, "cli", "reporter", 7]))
def test_fast_body_path_agrees_with_the_full_path(items, source):
    """POST /v1/events validates most bodies in one pass of pydantic's JSON parser; whenever that
    pass accepts a body, the full path must accept it too, with the same events."""
    import json as _json

    from incidentbot.ingest.schema import needs_cleaning, validate_body_fast

    try:
        raw = _json.dumps({"events": items, "source": source}).encode()
    except ValueError:
        return
    fast = validate_body_fast(raw, max_events=5000)
    if fast is None:
        return
    events, errors = validate_batch(_json.loads(raw)["events"], clean=needs_cleaning(raw))
    assert not errors, errors
    assert [e.model_dump() for e in fast[0]] == [e.model_dump() for e in events]
    assert fast[1] == source
