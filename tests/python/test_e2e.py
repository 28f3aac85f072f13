"""The end-to-end scenario (`make e2e`, part of `make test`): all six systems at once.

Starts a broker (tansu), Redis, the provider stand-ins, the local web site and `sixfold run`
(registry, ingress and every processor) on free ports and fresh data directories, then:

1. drives every system through the ingress (shorten and follow links, trip a rate limit, follow
   and tweet, chat over WebSockets, crawl the local site, send a notification), and produces
   events as another team's service would: Confluent's Python `AvroSerializer` against
   `sixfold registry`, on `url.created` and `notify.requested`;
2. SIGKILLs `sixfold run`, restarts the broker and Redis, starts `sixfold run` again, repeats a
   little of everything (the same notification id again, more clicks, one more chat message);
3. checks that every expected effect is there exactly once, and prints a summary per system.

SIXFOLD_BIN names the `sixfold` binary (`notify-standins` is next to it); TANSU_BIN the broker.
"""

import json
import os
import shutil
import signal
import time
import uuid

import pytest
from websockets.sync.client import connect as websocket

from sixfold_stack import PATIENCE_S, ROOT, Stack, mails, produce, wait

@pytest.fixture(scope="module")
def stack():
    if not os.environ.get("SIXFOLD_BIN"):
        pytest.skip("SIXFOLD_BIN is not set: point it at the sixfold binary")
    # Under var/ rather than a temporary directory: the processes' logs stay for a look after
    # a failure (CI prints where).
    base = ROOT / "var/e2e"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    # One rule that a burst trips; nothing else is limited, so the scenario's own requests
    # never are.
    stack = Stack(base, rules={"rules": [{
        "name": "e2e-shorten", "match": {"method": "POST", "route": "/v1/urls"},
        "key": "api_key",
        "limits": [{"name": "burst", "algorithm": "token_bucket", "limit": 5,
                    "window": "10s"}]}]})
    try:
        stack.start_broker()
        stack.start_redis()
        stack.start_standins()
        stack.start_sixfold()
        yield stack
    finally:
        stack.close()
        print(f"\nend-to-end logs: {base}/*.log")


def test_all_six_systems_survive_restarts_with_every_effect_once(stack):
    s = stack
    summary = {}
    run = uuid.uuid4().hex[:8]

    # --- URL shortener: through the ingress, and a link created by another system.
    links = {}
    for i in range(3):
        status, body, _ = s.post("/v1/urls", {"long_url": f"https://example.com/e2e/{run}/{i}"})
        assert status == 201, body
        links[body["short_code"]] = body["long_url"]
    outside = f"ext{run}"
    produce(s, "url.created", "url.created.avsc", outside, {
        "event_id": str(uuid.uuid4()), "occurred_at": int(time.time() * 1000),
        "short_code": outside, "long_url": f"https://example.com/outside/{run}",
        "custom_alias": True, "redirect": "FOUND", "expires_at": None, "created_by": "e2e"})
    links[outside] = f"https://example.com/outside/{run}"
    clicks = {}
    for code, target in links.items():
        wait(f"/{code} to redirect", lambda: s.get(f"/{code}")[2].get("location") == target)
        clicks[code] = 1
    for code in list(links)[:2]:
        assert s.get(f"/{code}")[0] == 302
        clicks[code] += 1

    # --- Rate limiter: a burst of shortens trips the 5-per-10-s rule.
    statuses = [s.post("/v1/urls", {"long_url": f"https://example.com/burst/{i}"})
                for i in range(8)]
    limited = [headers for status, _, headers in statuses if status == 429]
    assert limited, [status for status, _, _ in statuses]
    assert "ratelimit-policy" in limited[0], limited[0]
    summary["rate limiter"] = f"{len(limited)} of 8 burst requests refused with 429"

    # --- Home timeline: bob follows alice, alice tweets.
    alice, bob = f"alice{run}", f"bob{run}"
    assert s.post("/v1/follows", {"follower_id": bob, "followee_id": alice})[0] == 202
    wait("the follow", lambda: s.get(f"/v1/users/{alice}")[1]["followers"] == 1)
    tweets = []
    for i in range(3):
        status, body, _ = s.post("/v1/tweets", {"author_id": alice, "content": f"e2e {i}"})
        assert status == 201, body
        tweets.append(body["id"])

    def timeline():
        return [t["id"] for t in s.get(f"/v1/timeline/{bob}?limit=50")[1]["tweets"]]

    wait("bob's timeline", lambda: set(tweets) <= set(timeline()))

    # --- Chat: alice and bob over WebSockets.
    status, conversation, _ = s.post("/v1/chat/conversations", {"members": [alice, bob]})
    assert status in (200, 201), conversation
    conversation_id = conversation["conversation_id"]
    tokens = {user: s.post("/v1/chat/tokens", {"user_id": user})[1]["token"]
              for user in (alice, bob)}

    def chat(texts, first_seq):
        ws_url = s.url("/v1/chat/ws").replace("http://", "ws://")
        with websocket(f"{ws_url}?token={tokens[bob]}") as bob_ws, \
                websocket(f"{ws_url}?token={tokens[alice]}") as alice_ws:
            for i, text in enumerate(texts):
                alice_ws.send(json.dumps({"type": "send", "client_msg_id": f"{run}-{first_seq + i}",
                                          "conversation_id": conversation_id, "content": text,
                                          "content_type": "text"}))
            got, seen = [], []
            deadline = time.monotonic() + PATIENCE_S
            while len(got) < len(texts) and time.monotonic() < deadline:
                for ws in (bob_ws, alice_ws):
                    try:
                        frame = json.loads(ws.recv(timeout=0.2))
                    except TimeoutError:
                        continue
                    seen.append(frame)
                    if ws is bob_ws and frame["type"] == "message":
                        got.append(frame["content"])
            assert got == texts, seen

    chat(["hi bob", "are you there?"], 1)

    # --- Crawler: the local site, two hosts of 15 pages.
    hosts = s.start_site()
    status, body, _ = s.post("/v1/crawl/seeds", {"urls": [f"{h}/p/0" for h in hosts]})
    assert status == 202, body

    def fetched():
        total = 0
        for host in hosts:
            name = host.removeprefix("http://")
            pages = s.get(f"/v1/crawl/hosts/{name}/pages?limit=100")[1]["pages"]
            total += sum(1 for p in pages if p["outcome"] == "FETCHED")
        return total

    wait("every page crawled", lambda: fetched() == 30, timeout=120)

    # --- Notifications: through the ingress, and one request from another system.
    user = f"minji{run}"
    assert s.put(f"/v1/users/{user}/preferences", {"sms": False})[0] == 200
    assert s.put(f"/v1/users/{user}/contact", {"email": f"{user}@example.com"})[0] == 200
    note = f"welcome-{run}"
    status, body, _ = s.post("/v1/notifications", {
        "notification_id": note, "user_id": user, "template_id": "welcome",
        "channels": ["email"], "data": {"name": "Minji"}})
    assert status == 202, body
    outside_note = f"outside-{run}"
    produce(s, "notify.requested", "notify.requested.avsc", user, {
        "event_id": str(uuid.uuid4()), "occurred_at": int(time.time() * 1000),
        "notification_id": outside_note, "user_id": user, "template_id": "welcome",
        "channels": ["EMAIL"], "data": {"name": "Minji"}, "priority": "NORMAL",
        "send_at": None, "locale": None})
    for n in (note, outside_note):
        wait(f"the mail of {n}", lambda n=n: len(mails(s, n)) == 1)

    # --- Everything killed and restarted: the pipeline, the broker and Redis.
    s.stop("sixfold", signal.SIGKILL)
    # The local broker hands a dead member's partitions to a new member only once the dead
    # one's session (10 s) has expired, even across its own restart (docs/broker.md).
    time.sleep(12)
    s.stop("broker")
    s.stop("redis")
    s.start_broker()
    s.start_redis()
    s.start_sixfold()

    for code in links:
        wait(f"/{code} after the restart", lambda code=code: s.get(f"/{code}")[0] == 302)
        clicks[code] += 1
    status, body, _ = s.post("/v1/notifications", {
        "notification_id": note, "user_id": user, "template_id": "welcome",
        "channels": ["email"], "data": {"name": "Minji"}})
    assert status == 202, body
    # A new notification for the same user, behind the repeat in the user's partition: once it
    # is in the mailbox, the repeat has been handled.
    after_note = f"after-{run}"
    status, body, _ = s.post("/v1/notifications", {
        "notification_id": after_note, "user_id": user, "template_id": "welcome",
        "channels": ["email"], "data": {"name": "Minji"}})
    assert status == 202, body
    chat(["back again"], 3)

    # --- Every effect exactly once.
    for code, expected in clicks.items():
        wait(f"{expected} clicks on {code}",
              lambda code=code, expected=expected:
              s.get(f"/v1/urls/{code}")[1]["clicks_total"] == expected)
    summary["URL shortener"] = (f"{len(links)} links (1 from another system), "
                                f"{sum(clicks.values())} clicks counted exactly")
    ids = timeline()
    assert sorted(ids) == sorted(set(ids)) and set(tweets) <= set(ids), ids
    summary["home timeline"] = f"{len(tweets)} tweets in the follower's timeline, once each"
    status, history, _ = s.get(
        f"/v1/chat/conversations/{conversation_id}/messages?user_id={bob}&limit=50")
    assert status == 200, history
    seqs = sorted(m["seq"] for m in history["messages"])
    assert seqs == [1, 2, 3], seqs
    summary["chat"] = "3 messages over WebSockets, sequence 1..3 with no gap or repeat"
    assert fetched() == 30
    summary["web crawler"] = "30 pages of 2 local hosts fetched and stored"
    wait("the mail of the request after the repeat", lambda: len(mails(s, after_note)) == 1)
    for n in (note, outside_note, after_note):
        assert len(mails(s, n)) == 1, n
    summary["notifications"] = ("3 emails (1 requested by another system) in the mailbox once "
                                "each; a repeated id after the restart not sent again")
    print("\nend-to-end summary:")
    for system, what in summary.items():
        print(f"  {system:14} {what}")
