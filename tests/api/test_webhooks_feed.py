"""The shared feed of webhook delivery: the ledger read and decoded once for every webhook's worker,
in a window a slow worker may fall behind (it then reads the ledger on its own and catches up)."""

from __future__ import annotations

import collections
import functools
import time

import pytest
from trackledger.api.webhooks import deliverer
from trackledger.api.webhooks.feed import SharedFeed
from trackledger.ledger import Ledger, follow
from trackledger.ledger.events import RegisteredModelCreated, RunDeleted, new_event_id

from tests.api.conftest import API, in_process
from tests.api.webhook_receiver import Receiver

SECRET = "feed-secret"
SETTINGS = {"webhook_allow_private": True, "webhook_retry_max_s": 0.5, "webhook_timeout_s": 1.0}


def _model(name: str) -> RegisteredModelCreated:
    event_id = new_event_id()
    return RegisteredModelCreated(id=event_id, name=name, registered_model_id=event_id)


def _read_until(feed: SharedFeed, after: int, head: int) -> tuple[list, int]:
    deadline = time.monotonic() + 30
    while (read := feed.read(after, 0.1)) is not None and read[1] < head:
        assert time.monotonic() < deadline, "the feed did not reach the ledger's end"
    return read


def test_the_window_keeps_the_newest_events_a_webhook_can_act_on(tmp_path):
    with Ledger(tmp_path / "store", tmp_path / "state") as ledger:
        feed = SharedFeed(ledger, poll_s=0.05, after=0, window=2)
        try:
            ledger.append([_model("a"), RunDeleted(id=new_event_id(), run_id="r"), _model("b"), _model("c")])
            items, head = _read_until(feed, 3, ledger.last_seq)
            assert head == 4 and [item.event.name for item in items] == ["c"]
            assert [kind for kind, _ in items[0].notes] == ["registered_model.created"]
            assert feed.read(0, 0) is None  # "a" left the window: the reader reads the ledger itself
            items, _ = feed.read(1, 0)  # "b" and "c"; the run deletion concerns no webhook
            assert [item.event.name for item in items] == ["b", "c"]
        finally:
            feed.stop()
            feed.join(5)


@pytest.fixture
def receivers():
    made: list[Receiver] = []
    yield lambda: made.append(Receiver(secret=SECRET)) or made[-1]
    for receiver in made:
        receiver.close()


def _hook(http, receiver: Receiver) -> None:
    body = {"name": "hook", "url": receiver.url, "events": ["registered_model.created"], "secret": SECRET}
    assert http.post(f"{API}/webhooks", json=body).status_code == 200


def _names(receiver: Receiver, count: int) -> list[str]:
    return [d.payload["data"]["name"] for d in receiver.wait_for(count)]


def test_eight_webhooks_decode_each_event_once(tmp_path, monkeypatch, receivers):
    """Each worker followed the ledger on its own: eight webhooks decoded every event eight times."""
    decoded: collections.Counter[int] = collections.Counter()
    read_frames = follow.read_frames

    def counting(*args):
        events, offset = read_frames(*args)
        decoded.update(event.seq for event in events)
        return events, offset

    monkeypatch.setattr(follow, "read_frames", counting)
    with in_process(tmp_path / "data", **SETTINGS) as http:
        hooked = [receivers() for _ in range(8)]
        for receiver in hooked:
            _hook(http, receiver)
        names = [f"m{i:02d}" for i in range(30)]
        for name in names:
            assert http.post(f"{API}/registered-models/create", json={"name": name}).status_code == 200
        for receiver in hooked:
            assert _names(receiver, len(names)) == names
    assert decoded and sum(decoded.values()) < 2 * len(decoded), decoded


def test_a_slow_receiver_falls_behind_the_window_and_holds_back_no_other(tmp_path, monkeypatch, receivers):
    """A window of three events: the webhook whose receiver times out twice falls behind it, reads
    the ledger on its own, and still delivers every event once, in order; the others keep pace."""
    monkeypatch.setattr(deliverer, "SharedFeed", functools.partial(SharedFeed, window=3))
    with in_process(tmp_path / "data", **SETTINGS) as http:
        slow = receivers()
        slow.answers = ["hang", "hang"]
        healthy = [receivers() for _ in range(4)]
        for receiver in (slow, *healthy):
            _hook(http, receiver)
        names = [f"m{i:02d}" for i in range(12)]
        for name in names:
            assert http.post(f"{API}/registered-models/create", json={"name": name}).status_code == 200
        for receiver in healthy:
            assert _names(receiver, len(names)) == names
        assert _names(slow, len(names)) == names
        assert len({d.delivery_id for d in slow.deliveries}) == len(names)
