"""The console in a real browser: Debian's Chromium, driven by Playwright (part of `make test`).

Starts its own broker, Redis, provider stand-ins, local web site and `sixfold run` (the
`Stack` of the end-to-end suite, with the development rate-limit rules), opens the console at
`/` and uses it as a person would: shortens and follows a link, posts to a timeline, chats
between two panes, trips a rate limit, sends a notification, crawls the local site, and
re-drives a dead letter. Screenshots of each step go to `var/console-test/artifacts/`.

CHROMIUM_BIN names the browser (default `/usr/bin/chromium`, installed by `make deps`).
"""

import json
import os
import shutil
import urllib.error
import urllib.request
import uuid

import pytest
import yaml
from confluent_kafka import Producer
from playwright.sync_api import expect, sync_playwright

from sixfold_stack import ROOT, Stack, wait

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
BASE = ROOT / "var/console-test"
ARTIFACTS = BASE / "artifacts"
# Long enough for a record to pass through the broker and a processor on a busy CI machine.
SLOW_MS = 60_000


@pytest.fixture(scope="module")
def stack():
    if not os.environ.get("SIXFOLD_BIN"):
        pytest.skip("SIXFOLD_BIN is not set: point it at the sixfold binary")
    shutil.rmtree(BASE, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    rules = yaml.safe_load((ROOT / "config/ratelimit.yaml").read_text())
    stack = Stack(BASE, rules)
    try:
        stack.start_broker()
        stack.start_redis()
        stack.start_standins()
        stack.site = stack.start_site()
        stack.start_sixfold()
        yield stack
    finally:
        stack.close()
        print(f"\nconsole test logs: {BASE}/*.log, screenshots: {ARTIFACTS}")


@pytest.fixture(scope="module")
def page(stack):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make deps` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(stack.url("/"))
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        yield page
        page.screenshot(path=ARTIFACTS / "console.png", full_page=True)
        browser.close()
        assert not errors, f"the page threw: {errors}"


def shot(page, name):
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def test_the_pipeline_picture_is_live_with_every_processor(page):
    expect(page.get_by_test_id("live")).to_have_text("live", timeout=SLOW_MS)
    for processor in ["urls", "timeline", "chat", "crawler", "notify", "notify-push",
                      "notify-email", "notify-sms"]:
        expect(page.get_by_test_id(f"proc-{processor}")).to_be_visible()
    expect(page.get_by_test_id("topic-url.created")).to_be_visible()
    shot(page, "01-pipeline")


def test_a_shortened_link_counts_each_follow(page):
    page.fill("#long-url", f"https://example.com/console/{uuid.uuid4().hex}")
    page.click("#shorten")
    expect(page.locator("#short-link")).to_contain_text("http://127.0.0.1:")
    page.click("#follow")
    expect(page.get_by_test_id("clicks")).to_have_text("1", timeout=SLOW_MS)
    page.click("#follow")
    expect(page.get_by_test_id("clicks")).to_have_text("2", timeout=SLOW_MS)
    # The picture shows the URL shortener's views growing.
    expect(page.get_by_test_id("out-urls-view:clicks")).to_be_visible(timeout=SLOW_MS)
    shot(page, "02-urls")


def test_a_post_reaches_a_followers_home_timeline(page):
    page.fill("#tl-reader", "console-bob")
    page.fill("#tl-author", "console-alice")
    page.click("#tl-follow")
    expect(page.locator("#tl-error")).to_have_text("")
    # The follow must be applied before the post for it to be pushed; the timeline is also
    # merged on read, so either order shows up, but keep the person's order.
    text = f"hello from the browser {uuid.uuid4().hex[:8]}"
    page.fill("#tl-text", text)
    page.click("#tl-send")
    expect(page.get_by_test_id("timeline")).to_contain_text(text, timeout=SLOW_MS)
    shot(page, "03-timeline")


def test_two_chat_panes_talk_with_receipts_and_presence(page):
    page.click("#chat-connect")
    a, b = page.get_by_test_id("pane-a"), page.get_by_test_id("pane-b")
    expect(a.locator("form.send input")).to_be_enabled(timeout=SLOW_MS)
    expect(b.locator("form.send input")).to_be_enabled(timeout=SLOW_MS)
    a.locator("form.send input").fill("hi bob, from pane a")
    a.locator("form.send input").press("Enter")
    expect(b.locator(".messages")).to_contain_text("alice: hi bob, from pane a", timeout=SLOW_MS)
    # Acked with a sequence number, then read by the other pane.
    expect(a.locator(".messages li.mine .meta")).to_contain_text("read", timeout=SLOW_MS)
    b.locator("form.send input").fill("hello alice")
    b.locator("form.send input").press("Enter")
    expect(a.locator(".messages")).to_contain_text("bob: hello alice", timeout=SLOW_MS)
    expect(a.locator(".presence")).to_have_text("bob is online", timeout=SLOW_MS)
    shot(page, "04-chat")


def test_a_burst_is_refused_with_429_and_its_headers(page):
    page.click("#rl-burst")
    expect(page.get_by_test_id("rl-limited")).not_to_have_text("0", timeout=SLOW_MS)
    headers = page.get_by_test_id("rl-headers")
    expect(headers).to_contain_text("HTTP 429")
    expect(headers).to_contain_text("retry-after")
    expect(headers).to_contain_text("reads-per-ip")
    shot(page, "05-ratelimit")


def test_a_notification_arrives_in_the_mailbox_with_its_status_events(page):
    page.fill("#nt-user", "console-minji")
    page.fill("#nt-email", "console-minji@example.com")
    page.click("#nt-send")
    status = page.get_by_test_id("notify-status")
    expect(status).to_contain_text("QUEUED", timeout=SLOW_MS)
    expect(status).to_contain_text("SENT", timeout=SLOW_MS)
    expect(page.locator("#nt-mail")).to_contain_text("Welcome to Sixfold, console-minji",
                                                      timeout=SLOW_MS)
    shot(page, "06-notify")


def test_a_crawl_of_the_local_site_is_fetched(page, stack):
    page.fill("#crawl-seed", stack.site[0] + "/")
    page.fill("#crawl-depth", "1")
    page.click("#crawl-go")
    expect(page.locator("#crawl-error")).to_have_text("")
    expect(page.locator("#crawl-fetched")).not_to_have_text("0", timeout=SLOW_MS)
    # Fetched pages are stored: the picture shows the crawler's page view.
    expect(page.get_by_test_id("out-crawler-view:page")).to_be_visible(timeout=SLOW_MS)
    shot(page, "07-crawler")


def test_a_dead_letter_is_shown_decoded_and_redriven(page, stack):
    # Another system's broken record: not in the Confluent wire format.
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{stack.ports['broker']}"})
    producer.produce("url.created", key=b"broken", value=b"not avro at all")
    assert producer.flush(30) == 0
    expect(page.get_by_test_id("proc-urls")).to_have_class("proc failing", timeout=SLOW_MS)
    page.select_option("#dlq-processor", "urls")
    classes = page.get_by_test_id("dlq-classes")

    def listed():
        page.click("#dlq-load")
        expect(page.locator("#dlq-total")).not_to_have_text("reading…", timeout=SLOW_MS)
        return classes.locator(".dlq-class").count() > 0

    wait("the dead letter in the console", listed)
    expect(classes).to_contain_text("bad magic byte")
    page.click(".dlq-class button.redrive")
    expect(page.get_by_test_id("dlq-report")).to_contain_text("re-drove 1 of 1",
                                                              timeout=SLOW_MS)
    # Sent again, it fails again: a second record, the first marked as re-driven.
    wait("the re-driven record back in the DLQ",
         lambda: listed() and "2 records, 1 re-driven" in classes.inner_text())
    shot(page, "08-dlq")


def _post(stack, path, body, headers):
    request = urllib.request.Request(stack.url(path), data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json",
                                                             **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_console_actions_refuse_other_origins_and_bad_input_with_json(stack):
    status, body = _post(stack, "/console/api/dlq/urls/redrive", {"dry_run": True},
                         {"Origin": "https://evil.example"})
    assert (status, body["error"]) == (403, "cross_origin")
    status, body = _post(stack, "/console/api/dlq/urls/redrive", {"dry_run": "yes"}, {})
    assert status == 400 and "error" in body
    status, body = _post(stack, "/console/api/dlq/nope/redrive", {}, {})
    assert status == 404 and "nope" in body["message"]
    status, body = _post(stack, "/console/api/dlq/urls/redrive", {"dry_run": True}, {})
    assert status == 200 and body["dry_run"] is True
