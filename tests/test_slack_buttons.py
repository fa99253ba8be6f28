"""Alert buttons, "Post to channel", permanent Slack errors, admin groups, polls and runbooks over the API."""

from __future__ import annotations

import json

from sqlalchemy import select

from incidentbot.models import Hypothesis, HypothesisSignature, Outbox, Signature
from tests.conftest import event, eventually

OOM = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"


def alert(h):
    return h.ws.wait_for(lambda: h.channel_messages(), timeout=10)[0]


def test_alert_buttons_show_mute_and_start_vote(slack_harness):
    h = slack_harness
    h.ingest([event(event_id=f"b{i}", rank=i, message=OOM) for i in range(3)])
    msg = alert(h)
    with h.rt.db.write() as s:
        hyp = Hypothesis(title="batch too large after the data change", cause_class="software", evidence=["3 events"])
        s.add(hyp)
        s.flush()
        s.add(HypothesisSignature(hypothesis_id=hyp.id, signature_id=1, event_count=3))
    h.sim.click_button(user="UBOB", action_id="ib:show", channel=h.channel, message_ts=msg["ts"])
    shown = h.sim.wait_for_reply("UBOB", lambda r: "S-1" in json.dumps(r), timeout=10)
    assert "out of memory" in json.dumps(shown).lower()
    h.sim.click_button(user="UALICE", action_id="ib:vote_start", channel=h.channel, message_ts=msg["ts"])
    poll = h.ws.wait_for(lambda: [m for m in h.channel_messages() if "P-1" in json.dumps(m.get("blocks"))], timeout=10)[
        0
    ]
    assert "batch too large" in json.dumps(poll["blocks"])
    # A non-admin cannot mute; an admin can, and the alert says so in place.
    h.sim.click_button(user="UBOB", action_id="ib:mute", channel=h.channel, message_ts=msg["ts"])
    h.sim.wait_for_reply("UBOB", lambda r: "only incident admins" in json.dumps(r), timeout=10)
    with h.rt.db.read() as s:
        assert s.get(Signature, 1).muted_until is None
    h.sim.click_button(user="UALICE", action_id="ib:mute", channel=h.channel, message_ts=msg["ts"])
    h.ws.wait_for(lambda: "muted" in json.dumps(h.ws.message(h.channel, msg["ts"])["blocks"]), timeout=10)


def test_post_to_channel_shares_a_private_reply(slack_harness):
    h = slack_harness
    h.ingest([event(event_id="s1", message=OOM)])
    alert(h)
    resp = h.command("signatures top", user="UBOB")
    body = h.reply(resp, user="UBOB")
    assert body.get("response_type", "ephemeral") == "ephemeral"
    share = [b for b in body["blocks"] if b.get("block_id") == "share"][0]["elements"][0]
    before = len(h.channel_messages())
    eph = [e for e in h.ws.ephemeral_for("UBOB") if "Post to channel" in json.dumps(e.get("blocks"))][-1]
    h.sim.click_button(
        user="UBOB", action_id="ib:share", ephemeral_ts=eph["ts"], channel=h.channel, value=share["value"]
    )
    shared = h.ws.wait_for(lambda: h.channel_messages()[before:], timeout=10)[0]
    assert "S-1" in json.dumps(shared["blocks"]) and "shared by" in json.dumps(shared["blocks"])
    assert "Post to channel" not in json.dumps(shared["blocks"])


def test_permanent_slack_error_is_recorded_not_retried(slack_harness, db):
    h = slack_harness
    from incidentbot.services.outbox import enqueue

    with h.rt.db.write() as s:
        enqueue(s, op="post", channel="C-NOT-THERE", payload={"text": "hello"}, message_key="x", dedupe_key="x")
    row = eventually(lambda: _row(h, "x") if _row(h, "x").status == "failed" else None)
    assert row.last_error == "channel_not_found" and row.attempts == 1
    assert len(h.ws.calls("chat.postMessage", channel="C-NOT-THERE")) == 1
    metrics = h.sim._http.get(f"{h.service.url}/metrics").text
    assert 'incidentbot_slack_delivery_errors_total{error="channel_not_found"} 1.0' in metrics


def _row(h, key):
    with h.rt.db.read() as s:
        return s.scalars(select(Outbox).where(Outbox.dedupe_key == key)).one()


def test_admin_group_membership_grants_rights(db, settings_factory):
    from slack_sdk import WebClient

    from incidentbot.localslack import Workspace, run_in_thread
    from incidentbot.slack.app import Permissions

    ws = Workspace()
    group = ws.add_usergroup("gpu-oncall", ["UCAROL"])
    with run_in_thread(ws) as server:
        perms = Permissions(
            admins=frozenset({"UALICE"}), group=group, client=WebClient(token=ws.bot_token, base_url=server.api_url)
        )
        assert perms("UALICE") and perms("UCAROL") and not perms("UBOB")
    open_perms = Permissions(admins=frozenset(), group=None, client=None)
    assert open_perms("anyone")


def test_polls_and_runbooks_over_the_api(client, runtime, db):
    client.post(
        "/v1/events",
        json={
            "events": [
                event(event_id="x1", message="NVRM: Xid (PCI:0000:91:00): 79, pid=1, GPU has fallen off the bus.")
            ]
        },
    )
    with db.write() as s:
        hyps = [Hypothesis(title=t, cause_class="hardware") for t in ("bad GPU", "bad cable")]
        s.add_all(hyps)
        s.flush()
        s.add(HypothesisSignature(hypothesis_id=hyps[0].id, signature_id=1, event_count=1))
        ids = [x.id for x in hyps]
    pid = runtime.votes.create(creator="UALICE", channel=None, hypothesis_ids=ids, question="which?")
    with db.read() as s:
        first_option = runtime.votes.tally(s, pid)[0]["id"]
    runtime.votes.cast(poll_id=pid, user="U1", option_id=first_option)
    assert client.get("/v1/polls", headers={"Authorization": ""}).status_code == 401
    polls = client.get("/v1/polls", headers={"Authorization": "Bearer read-token"}).json()["polls"]
    assert (
        polls[0]["id"] == f"P-{pid}"
        and polls[0]["status"] == "open"
        and polls[0]["hypothesis_ids"] == [f"H-{i}" for i in ids]
    )
    assert [o["votes"] for o in polls[0]["options"]] == [1, 0, 0, 0, 0] and polls[0]["options"][0][
        "hypothesis_id"
    ] == f"H-{ids[0]}"
    runtime.resolutions.resolve(ids[0], cause="GPU fell off the bus", fix="drained and RMAed", actor="UALICE")
    books = {r["id"]: r for r in client.get("/v1/runbooks").json()["runbooks"]}
    assert books["gpu-fallen-off-bus"]["incidents"] == [f"H-{ids[0]}"] and books["gpu-fallen-off-bus"]["resolved"] == 1
    assert books["gpu-fallen-off-bus"]["mean_hours_to_resolution"] is not None
