"""End to end: the real Bolt app, FastAPI service and database, and the local Slack stand-in."""

from __future__ import annotations

import json
import re

from sqlalchemy import func, select

from incidentbot.models import Outbox
from tests.conftest import event, eventually

WATCHDOG = (
    "[rank{r}]:[E1206 18:44:12.715298746 ProcessGroupNCCL.cpp:607] [Rank {r}] Watchdog caught collective "
    "operation timeout: WorkNCCL(SeqNum=7753, OpType=ALLREDUCE, NumelIn=544997376, NumelOut=544997376, "
    "Timeout(ms)=600000) ran for 600061 milliseconds before timing out."
)


def test_help_and_unknown_commands_reply_ephemerally(slack_harness):
    h = slack_harness
    resp = h.command("help")
    assert resp.status == 200
    body = h.reply(resp)
    assert body.get("response_type", "ephemeral") == "ephemeral"
    text = json.dumps(body)
    for sub in (
        "list",
        "show",
        "signatures",
        "vote",
        "resolve",
        "merge",
        "split",
        "mute",
        "reopen",
        "runbooks",
        "digest",
    ):
        assert sub in text
    resp = h.command("frobnicate now")
    reply = h.reply_text(resp)
    assert resp.status == 200 and "help" in reply and "Traceback" not in reply
    assert h.channel_messages() == []


def _shows_count(message: dict, n: int) -> bool:
    # Without the <!date^EPOCH^…> tokens: an epoch second such as 1795835012 holds "350".
    text = re.sub(r"<!date\^[^>]*>", "", json.dumps(message["blocks"]))
    return re.search(rf"(?<![\d,]){n:,}(?![\d,])", text) is not None


def test_alert_is_posted_once_and_updated_in_place(slack_harness):
    h = slack_harness
    h.ingest(
        [
            event(event_id=f"w{i}", job_id="job-a", host=f"h{i % 4}", rank=i, message=WATCHDOG.format(r=i))
            for i in range(50)
        ]
    )
    msgs = h.ws.wait_for(lambda: h.channel_messages(), timeout=10)
    assert len(msgs) == 1
    first = msgs[0]
    assert "NCCL" in json.dumps(first["blocks"]) and _shows_count(first, 50)
    for batch in range(3):
        h.ingest(
            [
                event(event_id=f"w{batch}-{i}", job_id="job-b", host=f"h{i}", rank=i, message=WATCHDOG.format(r=i))
                for i in range(100)
            ]
        )
    h.ws.wait_for(lambda: _shows_count(h.ws.message(h.channel, first["ts"]), 350), timeout=15)
    assert len(h.channel_messages()) == 1, "a storm is one message, edited in place"
    edits = h.ws.edit_count(h.channel, first["ts"])
    assert 1 <= edits <= 4
    # Spread to a new job is said in the thread.
    replies = h.ws.wait_for(lambda: h.ws.replies(h.channel, first["ts"]), timeout=10)
    assert any("spread" in r["text"] for r in replies)


def test_429_storm_every_message_delivered_exactly_once(slack_harness):
    h = slack_harness
    h.ws.fail_next("chat.postMessage", status=429, retry_after=1, times=4)
    h.ws.fail_next("chat.postMessage", status=503, times=2)
    # Five failure modes: five exception types (five values in one position of one message would be
    # one failure mode with a variable to the template engine).
    texts = [f"{name}Error: failure mode in the trainer" for name in ("Alpha", "Beta", "Gamma", "Delta", "Epsilon")]
    h.ingest([event(event_id=f"m{i}", message=t) for i, t in enumerate(texts)])
    h.ws.wait_for(lambda: len(h.channel_messages()) >= 5, timeout=30)
    msgs = h.channel_messages()
    assert len(msgs) == 5

    def posts_pending():
        with h.rt.db.read() as s:
            return s.scalar(
                select(func.count()).select_from(Outbox).where(Outbox.op == "post", Outbox.status != "done")
            )

    eventually(lambda: posts_pending() == 0)
    assert len(h.ws.calls("chat.postMessage")) >= 5 + 4 + 2


def test_bad_or_stale_signatures_are_refused_without_effect(slack_harness):
    h = slack_harness
    stale = h.sim.slash_command("/incident", "vote", user="UALICE", channel=h.channel, stale=True)
    forged = h.sim.slash_command("/incident", "vote", user="UALICE", channel=h.channel, bad_signature=True)
    assert stale.status == 401 and forged.status == 401
    from incidentbot.models import Poll

    with h.rt.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Poll)) == 0


def test_mentions_and_links_in_failure_text_are_inert(slack_harness):
    h = slack_harness
    h.ingest(
        [
            event(
                event_id="evil",
                job_id="<!channel> job",
                message="RuntimeError: <!channel> <@U123> <https://evil.example|click> & <!here>",
            )
        ]
    )
    msg = h.ws.wait_for(lambda: h.channel_messages(), timeout=10)[0]
    raw = json.dumps(msg["blocks"]) + msg["text"]
    assert "<!channel>" not in raw and "<@U123>" not in raw and "<!here>" not in raw and "<https://evil" not in raw
    assert "&lt;!channel&gt;" in raw


def test_show_signature_and_list_through_slack(slack_harness):
    h = slack_harness
    h.ingest(
        [
            event(
                event_id=f"o{i}",
                rank=i,
                message="torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
            )
            for i in range(3)
        ]
    )
    h.ws.wait_for(lambda: h.channel_messages(), timeout=10)
    resp = h.command("show S-1")
    text = h.reply_text(resp)
    assert "S-1" in text and "out of memory" in text.lower()
    assert "Post to channel" in text
    resp = h.command("signatures top")
    assert "S-1" in h.reply_text(resp)
    resp = h.command("show S-999")
    assert "does not exist" in h.reply_text(resp)


def test_long_texts_are_cut_with_a_link_to_the_full_record(slack_harness):
    from incidentbot.localslack import validate_message

    h = slack_harness
    words = " ".join(f"state_{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}=ready" for i in range(400))
    h.ingest([event(event_id="long", message=f"trainer dump before exit: {words}")])
    shown = h.reply(h.command("show S-1"))
    text = json.dumps(shown)
    assert "Full text" in text and f"{h.rt.settings.public_url}/v1/signatures/S-1" in text
    assert validate_message({"blocks": shown["blocks"], "text": shown.get("text", "")}) is None
