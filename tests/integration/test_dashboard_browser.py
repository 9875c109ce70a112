"""The dashboard in a real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium), against
``create_app`` served by uvicorn on the bundled valkey-server: sign in with a token, see the counters, schedule
from the form and see it upcoming, cancel it with the keyboard alone, requeue a dead letter after confirming,
a user token seeing only its own notifications, one recipient's view (sent, received, read, open sockets), the
dead-letter cap's dropped count, a SIGKILLed worker flagged late while its batch comes back, pausing and resuming
delivery after a confirmation, dark mode, and the page working under its CSP with no console error. Screenshots
go to the test's artefacts folder (printed with -s; kept by pytest for the last runs).

Where no Chromium is installed (``make test`` installs it via apt-get when it can) it is skipped, saying so;
with ``ZSCHED_TEST_REQUIRE_BROWSER=1`` (as ``.ci/run`` sets) it errors instead."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers import Recorder, tick
from tests.integration.hookserver import HookServer
from tests.integration.wsutil import ServerThread, open_socket, receive, until_ready
from zsched import Scheduler
from zsched.embedded import EmbeddedServer
from zsched.engine import Core, Keyspace, Retention, RetryPolicy, add_minute
from zsched.settings import Settings
from zsched.web.app import create_app
from zsched.web.auth import TokenStore

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
if not (CHROMIUM.exists() and DRIVER.exists()):
    # make test skips, saying so; .ci/run installs Chromium and sets ZSCHED_TEST_REQUIRE_BROWSER=1, so CI fails
    # instead of passing without the browser proof.
    why = (
        "no Chromium: the dashboard's browser tests need Debian's chromium and chromium-driver "
        "(make test installs them with apt-get when it can)"
    )
    if os.environ.get("ZSCHED_TEST_REQUIRE_BROWSER") == "1":
        raise RuntimeError(why)
    pytest.skip(why, allow_module_level=True)

from selenium import webdriver  # noqa: E402  (only once Chromium is known to be there)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402

WAIT_S = 15.0


class Site:
    """The app on a free port, its keyspace on the bundled server, and tokens for it."""

    def __init__(self, server: EmbeddedServer) -> None:
        self.prefix = f"zt-{uuid.uuid4().hex[:10]}"
        self.redis_url = server.url
        # Beats every second, so a socket shows in the recipient view soon; a dead-letter cap of 2, as shown.
        settings = Settings.of(
            redis_url=server.url, prefix=self.prefix, rate_per_s=1000.0, rate_burst=1000, beat_every_s=1.0, max_dead=2
        )
        self.thread = ServerThread(create_app(settings, run_worker=False)).start()
        self.url = f"http://127.0.0.1:{self.thread.port}/dashboard"
        self.redis = redis.Redis.from_url(server.url)
        self.zs = Scheduler(
            redis.Redis.from_url(server.url), core=Core(Keyspace(self.prefix), retry=RetryPolicy((50,)))
        )
        store = TokenStore(self.prefix)
        self.admin = store.create(self.redis, "ops", admin=True)[0]
        self.alice = store.create(self.redis, "alice")[0]

    def close(self) -> None:
        self.thread.stop()
        self.zs.close()
        keys = list(self.redis.scan_iter(match=f"{self.prefix}:*", count=1000))
        if keys:
            self.redis.unlink(*keys)
        self.redis.close()


@pytest.fixture(scope="module")
def site(valkey: EmbeddedServer) -> Iterator[Site]:
    s = Site(valkey)
    yield s
    s.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(DRIVER)))
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dashboard-screenshots")
    print(f"dashboard screenshots in {folder}")
    return folder


def until(condition: Callable[[], Any], what: str) -> Any:
    """Poll ``condition`` until it is truthy (it may raise meanwhile); fail naming ``what``."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception:  # the page is still rendering: an element may be missing or stale
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT_S} s waiting for {what}")
        time.sleep(0.05)


def sign_in(browser: Any, site: Site, token: str) -> None:
    # The token is forgotten from a page of the same origin that is not the dashboard: a dashboard page still
    # signed in from the last test would go on refreshing between the clear and the next page, without a token,
    # and its 401s would land in this test's console.
    browser.get(site.url.replace("/dashboard", "/healthz"))
    browser.execute_script("sessionStorage.clear()")
    browser.get_log("browser")  # what earlier pages logged is theirs
    browser.get(site.url)
    field = until(lambda: browser.find_element(By.ID, "token"), "the token field")
    field.send_keys(token, Keys.ENTER)  # Enter submits: no mouse
    until(lambda: browser.find_element(By.ID, "main").is_displayed(), "the signed-in page")


def row(browser: Any, nid: int) -> WebElement | None:
    found = browser.find_elements(By.CSS_SELECTOR, f'#rows tr[data-id="{nid}"]')
    return found[0] if found else None


def counter(browser: Any, status: str) -> int:
    return int(browser.find_element(By.CSS_SELECTOR, f"#count-{status} dd").text.replace(",", ""))


def console_errors(browser: Any) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_admin_schedules_from_the_form_sees_it_upcoming_and_cancels_it_by_keyboard(
    browser: Any, site: Site, shots: Path
) -> None:
    site.zs.run(add_minute(site.zs.core, {"sent": 3, "le:5": 2, "le:250": 1}))  # as a worker's heartbeat adds them
    sign_in(browser, site, site.admin)
    assert browser.execute_script("return sessionStorage.getItem('zsched.token')") == site.admin
    until(lambda: browser.find_element(By.ID, "chart").get_attribute("data-sent") == "3", "the chart of the hour")
    summary = browser.find_element(By.ID, "chart-summary").text
    assert "3 sent" in summary and "p50 ≤ 5 ms, p99 ≤ 250 ms" in summary, summary
    assert site.admin not in browser.current_url
    until(lambda: counter(browser, "pending") == 0, "the pending counter")
    until(lambda: browser.find_elements(By.CSS_SELECTOR, "#process-rows tr[data-process]"), "this gateway's heartbeat")
    assert "gateway" in browser.find_element(By.ID, "process-rows").text

    title = f"dentist {uuid.uuid4().hex[:6]}"
    browser.find_element(By.ID, "s-recipients").send_keys("carol, dave")
    browser.find_element(By.ID, "s-title").send_keys(title)
    browser.find_element(By.ID, "s-message").send_keys("at 9:00")
    browser.find_element(By.ID, "s-data").send_keys('{"room": "B2"}')
    browser.find_element(By.CSS_SELECTOR, "#schedule-form button[type=submit]").click()
    until(lambda: "Scheduled 2 notification(s)" in browser.find_element(By.ID, "notice").text, "the schedule notice")
    ids = [int(i) for i in browser.find_element(By.ID, "notice").text.rsplit(":", 1)[1].split(",")]
    until(lambda: all(row(browser, i) for i in ids), "both rows in upcoming")
    # Rows are redrawn every refresh while nothing in them has the focus: read them inside ``until``.
    until(lambda: title in row(browser, ids[0]).text, "the title in its row")  # type: ignore[union-attr]
    n = site.zs.status(ids[0])
    assert (n.recipient, n.data, n.scheduled_status) == ("carol", {"room": "B2"}, "pending")
    assert 3500 < (n.scheduled_at.timestamp() - time.time()) < 3700  # the form's default: an hour from now
    until(lambda: counter(browser, "pending") == 2, "the pending counter to count them")
    browser.save_screenshot(str(shots / "1-scheduled.png"))

    # Keyboard alone: Tab reaches the row's Cancel button; Enter activates it.
    # The button is known by its text, not as an element: a redraw before the focus reaches the rows replaces it.
    def on_cancel() -> bool:
        return bool(browser.switch_to.active_element.text == f"Cancel {ids[0]}")

    browser.execute_script("arguments[0].focus()", browser.find_element(By.CSS_SELECTOR, '[data-table="upcoming"]'))
    for _ in range(40):  # Tab from the table's tab, through the toolbar and the rows, to this row's Cancel
        if on_cancel():
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    assert on_cancel(), "Tab never reached the Cancel button"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    until(lambda: f"Cancelled {ids[0]}." in browser.find_element(By.ID, "notice").text, "the cancel notice")
    until(lambda: row(browser, ids[0]) is None, "the cancelled row to leave upcoming")
    assert browser.switch_to.active_element.get_attribute("data-table") == "upcoming"  # the keyboard stays put
    assert site.zs.status(ids[0]).scheduled_status == "cancelled"
    browser.find_element(By.CSS_SELECTOR, '[data-table="cancelled"]').send_keys(Keys.ENTER)
    until(lambda: row(browser, ids[0]) is not None, "the row in the cancelled table")
    until(lambda: "cancelled" in row(browser, ids[0]).text, "the cancelled row's status")  # type: ignore[union-attr]
    browser.save_screenshot(str(shots / "2-cancelled.png"))

    # Reschedule the other one to two hours from now, in the browser's own time zone, through the dialog.
    browser.find_element(By.CSS_SELECTOR, '[data-table="upcoming"]').click()
    until(lambda: row(browser, ids[1]), "the other row")
    reschedule = f".//button[text()='Reschedule {ids[1]}']"
    until(lambda: row(browser, ids[1]).find_element(By.XPATH, reschedule).click() or True, "the reschedule button")  # type: ignore[union-attr]
    until(lambda: browser.find_element(By.ID, "reschedule").is_displayed(), "the reschedule dialog")
    target = int(time.time() + 7200)
    browser.execute_script(
        "arguments[0].value = localInput(new Date(arguments[1] * 1000))", browser.find_element(By.ID, "r-at"), target
    )
    browser.find_element(By.ID, "r-at").send_keys(Keys.ENTER)  # Enter in the field submits the dialog's form
    until(lambda: f"Rescheduled {ids[1]}." in browser.find_element(By.ID, "notice").text, "the reschedule notice")
    assert abs(site.zs.status(ids[1]).scheduled_at.timestamp() - target) < 1.5

    # One partition alone (this keyspace has one: partition 0 holds everything).
    until(lambda: len(Select(browser.find_element(By.ID, "partition")).options) == 2, "the partition choice")
    Select(browser.find_element(By.ID, "partition")).select_by_value("0")
    until(lambda: row(browser, ids[1]), "the row in partition 0")
    asked = "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('partition=0'))"
    until(lambda: browser.execute_script(asked), "a table read of partition 0")

    # Search by creator: the form's notifications were created by the admin's user.
    Select(browser.find_element(By.ID, "search-by")).select_by_value("created_by")
    browser.find_element(By.ID, "search-q").send_keys("ops", Keys.ENTER)
    until(lambda: "2 found for ops." in browser.find_element(By.ID, "notice").text, "the search by creator")
    assert row(browser, ids[0]) and row(browser, ids[1])
    Select(browser.find_element(By.ID, "search-by")).select_by_value("title")
    browser.find_element(By.ID, "search-q").clear()
    browser.find_element(By.ID, "search-q").send_keys(title.upper(), Keys.ENTER)  # any case
    until(lambda: f"2 found for {title.upper()}." in browser.find_element(By.ID, "notice").text, "the title search")
    assert console_errors(browser) == []


def test_a_dead_letter_is_requeued_after_a_confirmation(browser: Any, site: Site, shots: Path) -> None:
    one, dead = (site.zs.schedule([r], "webhook", "m", delay=0).notification_ids[0] for r in ("erin", "fred"))
    for _ in range(20):
        tick(site.zs, Recorder(fail={one, dead}))
        if {site.zs.status(i).scheduled_status for i in (one, dead)} == {"failed"}:
            break
        time.sleep(0.06)
    assert {site.zs.status(i).scheduled_status for i in (one, dead)} == {"failed"}
    sign_in(browser, site, site.admin)
    browser.find_element(By.CSS_SELECTOR, '[data-table="failed"]').click()
    until(lambda: row(browser, one) and row(browser, dead), "the dead letters in the failed table")
    retry = f".//button[text()='Retry {one} now']"
    until(lambda: row(browser, one).find_element(By.XPATH, retry).click() or True, "the retry button")  # type: ignore[union-attr]
    until(lambda: f"Requeued 1: {one}" in browser.find_element(By.ID, "notice").text, "the single retry")
    assert site.zs.status(one).scheduled_status == "pending" and site.zs.status(dead).scheduled_status == "failed"
    until(lambda: row(browser, one) is None, "the retried row to leave the failed table")
    bulk = browser.find_element(By.ID, "requeue-all")
    bulk.click()
    dialog = until(lambda: browser.find_element(By.ID, "confirm"), "the confirmation")
    until(lambda: dialog.is_displayed(), "the confirmation to open")
    assert "Requeue 1 dead letter" in dialog.text
    browser.save_screenshot(str(shots / "3-confirm.png"))
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)  # changed our mind: nothing happens
    until(lambda: "Nothing requeued." in browser.find_element(By.ID, "notice").text, "the refusal")
    assert site.zs.status(dead).scheduled_status == "failed"
    bulk.click()
    until(lambda: dialog.is_displayed(), "the confirmation again")
    assert browser.switch_to.active_element.get_attribute("id") == "confirm-ok"  # focus is on Confirm
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    until(lambda: "Requeued 1 dead letter(s)." in browser.find_element(By.ID, "notice").text, "the requeue notice")
    assert site.zs.status(dead).scheduled_status == "pending"
    until(lambda: row(browser, dead) is None, "the row to leave the failed table")
    assert console_errors(browser) == []


def test_a_user_token_sees_only_its_own_notifications(browser: Any, site: Site, shots: Path) -> None:
    (mine,) = site.zs.schedule(["alice"], "for alice", "m", delay=3600).notification_ids
    (theirs,) = site.zs.schedule(["bob"], "for bob", "m", delay=1800).notification_ids
    sign_in(browser, site, site.alice)
    until(lambda: row(browser, mine), "alice's own notification")
    assert row(browser, theirs) is None
    assert "for bob" not in browser.find_element(By.ID, "rows").text
    for admin_only in ("overview", "processes"):
        assert not browser.find_element(By.ID, admin_only).is_displayed()
    searchable = [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "search-by")).options]
    assert "title" in searchable  # present, but hidden: a user's title search would be refused
    option = browser.find_element(By.CSS_SELECTOR, '#search-by option[value="title"]')
    assert option.get_attribute("hidden") is not None and not option.is_enabled()
    search = browser.find_element(By.ID, "search-q")
    search.send_keys(str(theirs), Keys.ENTER)  # bob's id: the API answers 404, as for an id that does not exist
    until(lambda: f"0 found for {theirs}." in browser.find_element(By.ID, "notice").text, "the empty search")
    assert row(browser, theirs) is None
    search.clear()
    search.send_keys("bob", Keys.ENTER)  # bob's list: 403
    until(lambda: "you may list only what you receive" in browser.find_element(By.ID, "notice").text, "the 403")
    assert row(browser, theirs) is None
    browser.save_screenshot(str(shots / "4-user.png"))
    assert browser.find_element(By.ID, "s-recipients").get_attribute("value") == "alice"
    assert not [e for e in console_errors(browser) if "403" not in e and "404" not in e]


def test_the_recipient_view_shows_what_was_sent_received_and_read_and_the_open_socket(
    browser: Any, site: Site, shots: Path
) -> None:
    gina = TokenStore(site.prefix).create(site.redis, "gina")[0]
    with open_socket(f"ws://127.0.0.1:{site.thread.port}/ws?token={gina}") as ws:
        until_ready(ws)
        (nid,) = site.zs.schedule(["gina"], "lunch at noon", "m", delay=0).notification_ids
        for _ in range(20):  # the worker's inbox delivery: appended to gina's inbox and pushed to her socket
            tick(site.zs)
            if site.zs.status(nid).scheduled_status == "sent":
                break
            time.sleep(0.06)
        assert receive(ws)["id"] == nid
        ws.send(f'{{"type": "ack", "id": {nid}}}')  # her client says it arrived: delivered_at
        assert receive(ws)["type"] == "acked"
        assert nid in site.zs.mark_read("gina", [nid]).read_at  # she opens it: read_at
        sign_in(browser, site, site.admin)
        field = browser.find_element(By.ID, "recipient-q")
        field.send_keys("gina", Keys.ENTER)
        summary = browser.find_element(By.ID, "recipient-summary")
        until(lambda: "gina: 1 open socket now" in summary.text, "gina's open socket (from the gateway's heartbeat)")
        assert "1 sent, 1 received (acknowledged by their client), 1 read" in summary.text, summary.text
        got = until(lambda: browser.find_element(By.CSS_SELECTOR, f'#recipient-rows tr[data-id="{nid}"]'), "her row")
        assert "lunch at noon" in got.text and "sent" in got.text
        assert got.find_element(By.CSS_SELECTOR, "td.received").text not in ("", "-")
        assert got.find_element(By.CSS_SELECTOR, "td.read").text not in ("", "-")
        assert "on " in browser.find_element(By.ID, "recipient-gateways").text
        browser.save_screenshot(str(shots / "6-recipient.png"))
    until(lambda: "gina: 0 open sockets now" in summary.text, "the closed socket, at the next heartbeat and refresh")
    assert console_errors(browser) == []

    sign_in(browser, site, site.alice)  # a user token: their own view, and no one else's
    until(lambda: "alice:" in browser.find_element(By.ID, "recipient-summary").text, "alice's own view")
    assert browser.find_element(By.ID, "recipient-q").get_attribute("readonly") is not None
    assert not [e for e in console_errors(browser) if "403" not in e and "404" not in e]


def test_the_dead_letter_caps_dropped_count_is_shown(browser: Any, site: Site, shots: Path) -> None:
    # A worker with the same cap as the site's setting (2 per partition): three failures at once drop the oldest.
    capped = Scheduler(
        redis.Redis.from_url(site.redis_url),
        core=Core(Keyspace(site.prefix), retry=RetryPolicy(()), retention=Retention(max_dead=2)),
    )
    try:
        ids = capped.schedule(["hal", "ivy", "jon"], "doomed", "m", delay=0).notification_ids
        for _ in range(20):
            tick(capped, Recorder(fail=set(ids)))
            if site.redis.zcard(capped.core.keys.partitions[0].failed) == 2:
                break
            time.sleep(0.06)
        dropped = capped.stats().totals.get("dead_dropped", 0)
    finally:
        capped.close()
    assert dropped >= 1
    sign_in(browser, site, site.admin)
    line = browser.find_element(By.ID, "dead-line")
    until(lambda: line.get_attribute("data-dropped") == str(dropped), "the dropped count")
    assert f"{dropped} dropped over the cap" in line.text and "cap 2 per partition" in line.text, line.text
    assert "2 kept" in line.text
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#partitions thead th")]
    cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#partitions tbody tr:first-child td")]
    assert cells[headers.index("dead dropped")] == str(dropped)
    browser.find_element(By.CSS_SELECTOR, '[data-table="failed"]').click()
    until(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#rows tr[data-id]")) == 2, "the two dead letters kept")
    browser.save_screenshot(str(shots / "7-dead-cap.png"))
    assert console_errors(browser) == []


def test_delivery_is_paused_and_resumed_after_a_confirmation(browser: Any, site: Site, shots: Path) -> None:
    sign_in(browser, site, site.admin)
    line = browser.find_element(By.ID, "pause-line")
    until(lambda: "nothing is paused" in line.text, "the running state")
    try:
        browser.find_element(By.ID, "pause-type").send_keys("promo", Keys.ENTER)  # Enter asks first
        dialog = browser.find_element(By.ID, "confirm")
        until(lambda: dialog.is_displayed(), "the confirmation")
        assert "Pause delivery of notifications of type promo?" in dialog.text
        browser.switch_to.active_element.send_keys(Keys.ESCAPE)  # changed our mind: nothing happens
        until(lambda: "Nothing paused." in browser.find_element(By.ID, "notice").text, "the refusal")
        assert site.zs.pauses().types == [] and not site.zs.pauses().all
        browser.find_element(By.ID, "pause").click()
        until(lambda: dialog.is_displayed(), "the confirmation again")
        browser.switch_to.active_element.send_keys(Keys.ENTER)  # focus is on Confirm
        until(lambda: line.get_attribute("data-types") == "promo", "the promo pause shown")
        assert "Paused delivery of type promo." in browser.find_element(By.ID, "notice").text
        assert "paused for type promo since" in line.text and line.get_attribute("data-all") == "false"
        assert site.zs.pauses().types == ["promo"] and not site.zs.pauses().all
        site.zs.pause()  # someone else pauses everything: the page shows it at its next refresh
        until(lambda: line.get_attribute("data-all") == "true", "the pause of everything, from the API")
        assert "paused for every notification since" in line.text
        browser.save_screenshot(str(shots / "10-paused.png"))
        browser.find_element(By.ID, "pause-type").clear()
        browser.find_element(By.ID, "resume").click()
        until(lambda: dialog.is_displayed(), "the resume confirmation")
        assert "every pause is lifted" in dialog.text
        browser.switch_to.active_element.send_keys(Keys.ENTER)
        until(lambda: "nothing is paused" in line.text, "everything resumed")
        paused = site.zs.pauses()
        assert (paused.all, paused.types) == (False, [])
        assert console_errors(browser) == []
    finally:
        site.zs.resume()  # the other tests' workers must claim


def test_dark_mode_follows_the_browser_and_the_csp_holds(browser: Any, site: Site, shots: Path) -> None:
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    )
    try:
        sign_in(browser, site, site.admin)
        background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(13, 17, 23)"
        browser.save_screenshot(str(shots / "5-dark.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    browser.get(site.url)
    light = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert light == "rgb(255, 255, 255)"
    # Inline script is refused by the policy: the browser reports it, and it does not run.
    browser.get_log("browser")
    browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.injected = 1'; document.body.append(s)"
    )
    assert browser.execute_script("return window.injected === undefined")
    refused = [m for m in console_errors(browser) if "Content Security Policy" in m]
    assert refused, "an inline script ran or was not reported: the policy is not in force"


def test_a_killed_worker_goes_late_on_the_page_and_its_batch_comes_back(
    browser: Any, valkey: EmbeddedServer, shots: Path
) -> None:
    """A real ``zsched worker`` (beating every 200 ms, 1 s leases) holds a batch whose webhook never answers; the
    page lists it in flight and the batch in processing. SIGKILLed, its row is flagged late, and a second worker
    takes the batch once the lease runs out: the rows show up as sent. Its own keyspace, so no other test's
    notification reaches these workers."""
    site = Site(valkey)
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # takes the webhook's request, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    workers: list[subprocess.Popen[bytes]] = []

    def worker(hook_url: str) -> subprocess.Popen[bytes]:
        env = dict(
            os.environ,
            ZSCHED_CHANNELS="webhook",
            ZSCHED_WEBHOOK_URL=hook_url,
            ZSCHED_WEBHOOK_SECRET="test-secret",
            ZSCHED_WEBHOOK_TIMEOUT_S="120",
            ZSCHED_BEAT_EVERY_S="200ms",
            ZSCHED_LEASE_MS="1s",
        )
        command = [sys.executable, "-m", "zsched.cli", "worker", "--redis-url", site.redis_url, "--prefix", site.prefix]
        workers.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return workers[-1]

    try:
        ids = site.zs.schedule(["kim", "lee"], "held", "m", delay=0, channels=["webhook"]).notification_ids
        first = worker(f"http://127.0.0.1:{silent.getsockname()[1]}/hook")
        held = until(
            lambda: [p for p in site.zs.processes() if p.info.pid == first.pid and p.info.in_flight == 2],
            "the worker to report its batch in flight",
        )
        sign_in(browser, site, site.admin)
        line = f'#process-rows tr[data-process="{held[0].info.id}"]'
        mine = until(lambda: browser.find_element(By.CSS_SELECTOR, line), "the worker's row")
        assert "worker" in mine.text and "late" not in (mine.get_attribute("class") or "")
        browser.find_element(By.CSS_SELECTOR, '[data-table="processing"]').click()
        until(lambda: all(row(browser, i) for i in ids), "the held batch in processing")

        first.kill()  # SIGKILL: no goodbye, its heartbeat simply stops
        first.wait(10)
        until(lambda: "late" in (browser.find_element(By.CSS_SELECTOR, line).get_attribute("class") or ""), "late")
        assert "(late)" in browser.find_element(By.CSS_SELECTOR, line).text
        browser.save_screenshot(str(shots / "8-worker-late.png"))

        with HookServer() as hook:
            second = worker(hook.url)  # reaps the expired leases and delivers the batch
            until(lambda: len(hook.requests) >= 2, "the second worker to deliver the batch")
            until(lambda: {site.zs.status(i).scheduled_status for i in ids} == {"sent"}, "the batch sent")
            browser.find_element(By.CSS_SELECTOR, '[data-table="sent"]').click()
            until(lambda: all(row(browser, i) for i in ids), "the batch in the sent table")
            (taker,) = until(
                lambda: [p.info.id for p in site.zs.processes() if p.info.pid == second.pid], "its heartbeat"
            )
            ours = until(
                lambda: browser.find_element(By.CSS_SELECTOR, f'#process-rows tr[data-process="{taker}"]'),
                "the second worker's row",
            )
            assert "late" not in (ours.get_attribute("class") or "")
            assert "late" in (browser.find_element(By.CSS_SELECTOR, line).get_attribute("class") or "")
            browser.save_screenshot(str(shots / "9-batch-back.png"))
        assert console_errors(browser) == []
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait(5)
        silent.close()
        site.close()
