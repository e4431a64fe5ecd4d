"""JupyterLab in a real browser: the widgets render and work against real brokers.

JupyterLab serves a temporary copy of ``widgets.ipynb`` on 127.0.0.1 (free port, token);
headless Debian Chromium, driven by Playwright, opens it and runs all cells. The notebook's
``mqkit.start_brokers()`` reuses the session's brokers (``MQKIT_STATE_DIR``). Then: a click
on Publish puts a message on the queue, the QueueInbox shows it, the TopologyView draws the
queue after a refresh. A RoutingExplainer over a topic exchange read from the broker and a
TopicFilterExplainer show, for a routing key and a topic typed into them, the verdicts of
:mod:`mqkit.routing`. Last, the RabbitMQ management UI through jupyter-server-proxy: log in,
the Overview lists the node, a queue's page (``api/queues/%2F/NAME``) opens, and no API call
fails (no 412 on the browser's revalidations). Then the tour of lab 01: the Queues page lists
a queue whose consumer forgot its acks with *Unacked* 2, and the Connections, Channels and
Exchanges tabs show what the lab says they show. Screenshots go to
``test-artifacts/browser/`` (``9-management-queues-via-proxy.png``: the queues page).
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import shutil
import time
import uuid
from pathlib import Path

import pytest

from mqkit.routing import Binding
from mqkit.widgets import TopicFilterModel
from mqkit.widgets.routing_explainer import RoutingExplainerModel
from tests.browser.jupyter_server import jupyter_lab
from tests.helpers import require

pytestmark = [pytest.mark.browser, pytest.mark.integration]

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parents[1] / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("MQKIT_TEST_CHROMIUM", "/usr/bin/chromium")
#: The flags that work on the CI machines (closed network, root, no GPU).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: Milliseconds for one UI step (kernel start and the first cell's broker lookup included).
STEP = 60_000
#: The notebook's topic exchange: queue suffix -> binding key.
BLOG_BINDINGS = {"sports": "sports.#", "tech": "#.technology", "reviews": "*.review"}
BLOG_ROUTING_KEY = "sports.football.technology"
TOPIC_FILTERS = ["sport/+", "sport/#", "+/tennis/#"]
TOPIC = "sport/tennis/player1"


@pytest.fixture(scope="module")
def chromium_path() -> str:
    require(importlib.util.find_spec("playwright") is not None,
            "Playwright for Python is not installed (pip install playwright)")
    require(Path(CHROMIUM).is_file(),
            f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


def test_widgets_render_and_work(chromium_path, brokers, broker_state_dir, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for stale in ARTIFACTS.glob("*.png"):
        stale.unlink()  # only this run's pictures, so a failure is not hidden by old ones
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(HERE / "widgets.ipynb", root / "widgets.ipynb")
    queue = f"browser-{uuid.uuid4().hex[:8]}"
    message = f"hello from chromium {uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
    env.update(MQKIT_STATE_DIR=str(broker_state_dir), MQKIT_BACKEND="process",
               MQKIT_TEST_BROWSER_QUEUE=queue)

    with jupyter_lab(root, env, tmp_path / "jupyter.log") as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(f"{server.url}/lab/tree/widgets.ipynb?token={server.token}")
            notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
            expect(notebook.locator(".jp-Cell").first).to_be_visible(timeout=STEP)
            # Run only once the kernel is up: cells queued while it starts can be dropped.
            expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=STEP)
            # Run > Run All Cells, through the menu as a student would.
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

            publish = notebook.get_by_role("button", name="Publish")
            expect(publish).to_be_visible(timeout=STEP)
            inbox_counter = notebook.get_by_text("0 received")
            expect(inbox_counter).to_be_visible(timeout=STEP)
            refresh = notebook.get_by_role("button", name="Refresh")
            expect(refresh).to_be_visible(timeout=STEP)
            expect(notebook.get_by_text(f"queue: {queue}")).to_be_visible(timeout=STEP)
            # The topology drawn at the start already holds the queue (declared before it).
            topology_svg = notebook.locator(".widget-html svg").last
            expect(topology_svg).to_be_visible(timeout=STEP)
            page.screenshot(path=ARTIFACTS / "1-after-run-all.png", full_page=True)

            body = notebook.locator(".widget-textarea", has_text="body").locator("textarea")
            body.fill(message)
            publish.click()
            expect(notebook.get_by_text("published to exchange")).to_be_visible(timeout=STEP)
            inbox_line = notebook.locator("pre", has_text=message)
            expect(inbox_line).to_be_visible(timeout=STEP)
            expect(inbox_line).to_contain_text(f"[{queue}]")
            expect(notebook.get_by_text("1 received")).to_be_visible(timeout=STEP)
            inbox_line.scroll_into_view_if_needed()
            page.screenshot(path=ARTIFACTS / "2-published-and-received.png", full_page=True)

            # Stop the inbox, publish again: the message waits in the queue, and only a
            # refreshed TopologyView (drawn before it was published) can show it there.
            notebook.get_by_role("button", name="Stop").click()
            expect(notebook.get_by_text("(stopped)")).to_be_visible(timeout=STEP)
            # The kernel handles widget events in order: the publish is done before the refresh.
            publish.click()
            drawn = notebook.locator(".widget-html svg text", has_text=queue)
            expect(drawn.first).to_be_visible(timeout=STEP)
            waiting = notebook.locator(".widget-html svg text", has_text="1 message")
            expect(waiting).to_have_count(0)
            refresh.click()
            expect(waiting.first).to_be_visible(timeout=STEP)
            expect(notebook.get_by_text("1 received")).to_be_visible()
            drawn.first.scroll_into_view_if_needed()
            page.screenshot(path=ARTIFACTS / "3-topology-refreshed.png", full_page=True)
            topology_svg.screenshot(path=ARTIFACTS / "3-topology-widget.png")

            check_routing_explainer(page, notebook, queue)
            check_topic_filter_explainer(page, notebook)

            # The management UI through jupyter-server-proxy, in the same browser.
            ui = browser.new_page(viewport={"width": 1200, "height": 800})
            ui.goto(f"{server.url}/rabbitmq-management/?token={server.token}")
            expect(ui).to_have_title("RabbitMQ Management", timeout=STEP)
            ui.screenshot(path=ARTIFACTS / "6-management-login-via-proxy.png")
            check_management_ui(ui, brokers.management, queue)
            check_management_tour(ui, brokers, queue)
        except Exception:
            # What the browser showed when it failed, beside the other screenshots.
            pages = [shown for context in browser.contexts for shown in context.pages]
            for number, shown in enumerate(pages):
                shown.screenshot(path=ARTIFACTS / f"failure-{number}.png", full_page=True)
            raise
        finally:
            browser.close()

        # The same proxy answers the management API with the brokers' credentials.
        management = brokers.management
        auth = base64.b64encode(f"{management.username}:{management.password}".encode())
        # The default vhost as %2F (jupyter-server-proxy decodes it; mqkit's forwarder
        # restores it).
        status, payload = server.get(f"/rabbitmq-management/api/queues/%2F/{queue}",
                                     headers={"Authorization": f"Basic {auth.decode()}"})
        assert status == 200, payload[:500]
        assert json.loads(payload)["name"] == queue


def check_routing_explainer(page, notebook, queue):
    """Type a routing key into the RoutingExplainer; the table shows mqkit.routing's verdicts."""
    from playwright.sync_api import expect

    explainer = notebook.locator(".jp-OutputArea-output", has=page.get_by_role(
        "button", name="Re-read bindings"))
    expect(explainer).to_be_visible(timeout=STEP)
    # Read from the broker, not given: the status line says so.
    expect(explainer).to_contain_text(f"{queue}.blog (topic): 3 binding(s) read from the broker",
                                      timeout=STEP)
    field = explainer.locator(".widget-text", has_text="routing key").locator("input")
    field.click()
    field.press_sequentially(BLOG_ROUTING_KEY)  # keystrokes, as a student types them
    bindings = [Binding(f"{queue}.{suffix}", key) for suffix, key in BLOG_BINDINGS.items()]
    matches = RoutingExplainerModel("topic", bindings).explain(BLOG_ROUTING_KEY)
    assert [bool(m) for m in matches] == [True, True, False]  # the model's own view
    verdict = explainer.locator("p", has_text="delivered to:")
    expect(verdict).to_have_text(f"→ delivered to: {queue}.sports, {queue}.tech",
                                 timeout=STEP)
    for match in matches:
        row = explainer.locator("tr", has=page.locator(
            "code", has_text=match.binding.destination))
        expect(row).to_have_count(1)
        expect(row).to_contain_text("✔ matched" if match else "✘ no")
        expect(row).to_contain_text(f"binding key '{match.binding.binding_key}'")
        expect(row).to_contain_text(match.reason)
    explainer.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "4-routing-explainer.png", full_page=True)
    explainer.screenshot(path=ARTIFACTS / "4-routing-explainer-widget.png")


def check_topic_filter_explainer(page, notebook):
    """Type a topic into the TopicFilterExplainer; each filter's verdict line renders."""
    from playwright.sync_api import expect

    explainer = notebook.locator(".jp-OutputArea-output", has=page.locator(
        ".widget-textarea", has_text="filters"))
    expect(explainer).to_be_visible(timeout=STEP)
    field = explainer.locator(".widget-text", has_text="topic").locator("input")
    field.click()
    field.press_sequentially(TOPIC)
    lines = TopicFilterModel(TOPIC_FILTERS, TOPIC).lines()
    assert [line.startswith("✔") for line in lines] == [False, True, True]
    result = explainer.locator("pre")
    expect(result).to_have_text("\n".join(lines), timeout=STEP)
    explainer.scroll_into_view_if_needed()
    explainer.screenshot(path=ARTIFACTS / "5-topic-filter-explainer-widget.png")


def check_management_ui(ui, management, queue):
    """Log in through the proxy: Overview with the node, a queue's page, no failed API call."""
    from playwright.sync_api import expect

    api_calls: list[tuple[str, bool, int]] = []  # (url, conditional request?, status)

    def record(response):
        if "/rabbitmq-management/api/" in response.url:
            conditional = "if-none-match" in response.request.all_headers()
            api_calls.append((response.url, conditional, response.status))

    ui.on("response", record)
    ui.locator("input[name=username]").fill(management.username)
    ui.locator("input[name=password]").fill(management.password)
    ui.locator("input[type=submit]").click()
    expect(ui.locator("h1", has_text="Overview")).to_be_visible(timeout=STEP)
    expect(ui.locator("#main table", has_text="@").first).to_be_visible(timeout=STEP)
    node = ui.locator("#main td", has_text="@localhost").first
    expect(node).to_be_visible(timeout=STEP)
    ui.screenshot(path=ARTIFACTS / "7-management-overview-via-proxy.png")
    # A queue's own page: the UI asks for api/queues/%2F/NAME (the default vhost).
    ui.goto(ui.url.split("#")[0] + f"#/queues/%2F/{queue}")
    expect(ui.locator("h1", has_text=queue)).to_be_visible(timeout=STEP)
    expect(ui.get_by_text("Ready").first).to_be_visible(timeout=STEP)
    # The sections lab 01's tour names: the queue's bindings, consumers and Get messages.
    for section in ("Consumers", "Bindings", "Get messages"):
        expect(ui.locator("#main h2", has_text=section).first).to_be_visible(timeout=STEP)
    ui.screenshot(path=ARTIFACTS / "8-management-queue-via-proxy.png", full_page=True)
    ui.remove_listener("response", record)
    failed = [(url, status) for url, _, status in api_calls if status >= 400]
    assert not failed, failed
    # The browser revalidated cached answers (If-None-Match): these used to get 412.
    assert any(conditional for _, conditional, _ in api_calls), api_calls
    assert any(f"/api/queues/%2F/{queue}" in url for url, _, _ in api_calls), api_calls


#: Lab 01's tour: the connection the test names, and how many deliveries it leaves unacked.
TOUR_CONNECTION = "browser-tour"
UNACKED = 2


def columns(table, row) -> dict[str, str]:
    """A management UI list row as header -> cell text (the last header row names cells)."""
    headers = [text.strip() for text in
               table.locator("thead tr").last.locator("th").all_inner_texts()]
    cells = [text.strip() for text in row.locator("td, th").all_inner_texts()]
    return dict(zip(headers, cells, strict=False))


def wait_for_columns(ui, table, row, expected: dict[str, str]) -> dict[str, str]:
    """The row's cells once they show ``expected`` (the UI refreshes every 5 s)."""
    deadline = time.monotonic() + STEP / 1000
    while True:
        seen = columns(table, row)
        if all(seen.get(k) == v for k, v in expected.items()) or time.monotonic() > deadline:
            return seen
        ui.wait_for_timeout(500)


def check_management_tour(ui, brokers, queue):
    """Lab 01's tour: a forgotten ack on the Queues page, and the tabs the lab names."""
    from playwright.sync_api import expect

    import mqkit

    forgotten = f"{queue}.forgotten"
    connection = mqkit.amqp_connection(brokers, name=TOUR_CONNECTION)
    try:
        channel = connection.channel()
        channel.queue_declare(forgotten, durable=True, arguments={"x-expires": 600_000})
        for number in range(UNACKED):
            channel.basic_publish(exchange="", routing_key=forgotten, body=f"job {number}")
        taken = 0
        for method, _properties, _body in channel.consume(forgotten, inactivity_timeout=1):
            if method is None:
                break
            taken += 1  # and no ack: the forgotten ack of lab 01
        assert taken == UNACKED
        base = ui.url.split("#")[0]
        # Queues: the forgotten queue's row, Ready 0 and Unacked 2, and the rate columns.
        ui.goto(base + "#/queues")
        expect(ui.locator("h1", has_text="Queues")).to_be_visible(timeout=STEP)
        table = ui.locator("#main table.list").first
        row = table.locator("tbody tr", has=ui.get_by_text(forgotten, exact=True))
        expect(row).to_have_count(1, timeout=STEP)
        wanted = {"Ready": "0", "Unacked": str(UNACKED), "Total": str(UNACKED)}
        seen = wait_for_columns(ui, table, row, wanted)
        assert {k: seen.get(k) for k in wanted} == wanted, seen
        assert {"incoming", "deliver / get", "ack"} <= set(seen), seen
        row.scroll_into_view_if_needed()
        ui.screenshot(path=ARTIFACTS / "9-management-queues-via-proxy.png", full_page=True)
        # Connections: the client-provided name under the connection's address.
        ui.goto(base + "#/connections")
        table = ui.locator("#main table.list").first
        row = table.locator("tbody tr", has_text=TOUR_CONNECTION)
        expect(row).to_have_count(1, timeout=STEP)
        address = columns(table, row)["Name"].split()[0]  # 127.0.0.1:PORT, then the name
        seen = wait_for_columns(ui, table, row, {"Channels": "1"})
        assert seen.get("Channels") == "1", seen
        ui.screenshot(path=ARTIFACTS / "10-management-connections-via-proxy.png",
                      full_page=True)
        # Channels: "address (number)", holding the unacked deliveries; a Prefetch column.
        ui.goto(base + "#/channels")
        table = ui.locator("#main table.list").first
        row = table.locator("tbody tr", has=ui.get_by_text(f"{address} (1)", exact=True))
        expect(row).to_have_count(1, timeout=STEP)
        seen = wait_for_columns(ui, table, row, {"Unacked": str(UNACKED)})
        assert seen.get("Unacked") == str(UNACKED), seen
        assert "Prefetch" in seen, seen
        ui.screenshot(path=ARTIFACTS / "11-management-channels-via-proxy.png", full_page=True)
        # Exchanges: the default exchange by the name the UI gives it.
        ui.goto(base + "#/exchanges")
        expect(ui.locator("#main").get_by_text("(AMQP default)")).to_be_visible(timeout=STEP)
        ui.screenshot(path=ARTIFACTS / "12-management-exchanges-via-proxy.png",
                      full_page=True)
        # Overview: the queued-messages and message-rates charts the lab points to.
        ui.goto(base + "#/")
        for title in ("Queued messages", "Message rates"):
            expect(ui.locator("#main", has_text=title).first).to_be_visible(timeout=STEP)
        ui.screenshot(path=ARTIFACTS / "13-management-overview-charts-via-proxy.png",
                      full_page=True)
    finally:
        with contextlib.suppress(Exception):
            connection.channel().queue_delete(forgotten)
        connection.close()
