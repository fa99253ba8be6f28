"""The read model (services/readmodel.py): one home for what every shell shows, LookupError for
what does not exist, and the API's one mapping of that to 404 (KeyError and IndexError, also
LookupErrors, stay bugs: 500)."""

from __future__ import annotations

import pytest

from tests.conftest import event

# (lookup, text, what the error says): ids that do not exist, and ids that cannot exist.
MISSING = [
    ("hypothesis_detail", "H-999999", "H-999999 does not exist"),
    ("hypothesis_detail", "H-x", "expected an id like H-n (hypothesis)"),
    ("hypothesis_detail", "S-1", "expected an id like H-n (hypothesis)"),  # known wrong: a signature's id
    ("hypothesis_detail", "", "expected an id like H-n"),
    ("signature_detail", "S-999999", "S-999999 does not exist"),
    ("signature_detail", "H-1", "expected an id like S-n (signature)"),
    ("signature_detail", "S-٣", "expected an id like S-n"),  # not ASCII digits
]


@pytest.mark.parametrize("lookup,text,says", MISSING)
def test_a_lookup_of_nothing_raises_lookup_error(runtime, lookup, text, says):
    with pytest.raises(LookupError) as caught:
        getattr(runtime.read_model, lookup)(text)
    assert says in str(caught.value)


@pytest.mark.parametrize("lookup,text,says", [m for m in MISSING if m[1]])  # "" is the list's route
def test_the_api_says_404_with_the_read_models_sentence(client, lookup, text, says):
    path = {"hypothesis_detail": "/v1/hypotheses/", "signature_detail": "/v1/signatures/"}[lookup]
    r = client.get(path + text)
    assert r.status_code == 404, r.text
    assert says in r.json()["detail"]


def test_records_are_the_same_for_every_shell(client, runtime):
    assert (
        client.post("/v1/events", json={"events": [event(event_id="a"), event(event_id="b", rank=2)]}).status_code
        == 202
    )
    page, last = runtime.read_model.signatures_page(limit=10, after=None)
    assert last is None and [s["id"] for s in page] == ["S-1"] and page[0]["count"] == 2
    detail = runtime.read_model.signature_detail("S-1")
    assert detail["example"] and detail["explain"]["parser"] and detail["merged_into"] is None
    api = client.get("/v1/signatures/S-1").json()
    assert api["id"] == detail["id"] and api["count"] == detail["count"] and list(api) == list(detail)
    events, last = runtime.read_model.events_page(limit=1, after=None)
    assert [e["event_id"] for e in events] == ["a"] and last is not None
    events, last = runtime.read_model.events_page(limit=1, after=last)
    assert [e["event_id"] for e in events] == ["b"] and last is None


@pytest.mark.parametrize("error", [KeyError("k"), IndexError("i")])
def test_a_key_error_in_a_route_is_a_bug_not_a_404(runtime, error):
    from fastapi.testclient import TestClient

    from incidentbot.api import create_app

    app = create_app(runtime)

    @app.get("/broken")
    def broken():
        raise error

    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/broken").status_code == 500
