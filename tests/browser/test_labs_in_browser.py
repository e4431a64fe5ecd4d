"""The real labs in JupyterLab with Chromium: Run All, no error, every widget alive and working.

Each selected notebook is copied without outputs into a folder that JupyterLab serves (with
every cell kept in the DOM), opened in headless Debian Chromium through Playwright and run
with Run > Run All Cells. When nothing is queued or running any more and the kernel is idle:

- every non-empty code cell ran (a failing cell stops Run All: the cells after it stay
  ``[ ]``), and no cell shows a stderr or error output with a traceback or an error;
- every widget a cell displays is still drawn, and each kind answers one interaction:
  Publisher → a message with a unique body reaches the lab's QueueInbox (its line appears,
  its counter grows); TopologyView → a queue this test declares with the lab's prefix appears
  after *Refresh*; RoutingExplainer → a bad headers line is reported, then a routing key (or
  headers) typed in shows the verdicts :mod:`mqkit.routing` gives for the exchange's bindings
  read from the broker now; MQTTPublisher → the payload reaches the MQTT inbox;
  TopicFilterExplainer → a typed topic shows the model's verdicts; BrokerPanel → *Restart*
  shows ``restarting…`` and then both brokers running again.

The kernels use brokers of this module's own (``MQKIT_STATE_DIR``), which the BrokerPanel
may restart: on the process backend and on the newest broker line (RabbitMQ 4.3 /
Mosquitto 2.1 in Docker, ``tests/lines.py``). By default the student notebooks with widgets
run (what CI runs); ``MQKIT_TEST_BROWSER_ALL=1`` (``make test-browser-all``) runs every
student and solution notebook, and ``make test-matrix`` every selected notebook on every
line. Screenshots and ``timings.txt`` go to
``test-artifacts/browser/labs/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mqkit.authoring import Lab, find_labs
from tests.browser.chromium import CHROMIUM_ARGS, require_chromium
from tests.browser.jupyter_server import JupyterServer, jupyter_lab
from tests.browser.notebook_page import (
    ALL_CELLS_IN_DOM,
    WIDGET_OUTPUT,
    CellState,
    code_cells_that_run,
    fresh_copy,
    open_notebook,
    read_cells,
    run_all_cells,
    wait_until_run_done,
)
from tests.labs.conftest import backend_environment
from tests.lines import backend_params, make_line_backend

pytestmark = [pytest.mark.browser, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
LABS = REPO / "labs"
ARTIFACTS = REPO / "test-artifacts" / "browser" / "labs"
#: Every student and solution notebook, not only the student notebooks with widgets.
RUN_EVERY_NOTEBOOK = os.environ.get("MQKIT_TEST_BROWSER_ALL", "").lower() in ("1", "true", "yes")
#: Milliseconds for one UI step (opening a notebook and starting its kernel included).
STEP = 60_000
#: Milliseconds for one notebook's Run All (labs 02 and 09 restart RabbitMQ).
RUN_ALL = 300_000
#: Milliseconds for a BrokerPanel restart of both brokers (RabbitMQ boots again).
RESTART = 120_000
#: Milliseconds to wait for the last widgets of a run to be drawn.
DRAWN = 10_000
#: A cell's widget constructor call: the widget kinds a notebook displays.
WIDGET_CALL = re.compile(r"\b(BrokerPanel|Publisher|QueueInbox|TopologyView|RoutingExplainer|"
                         r"MQTTInbox|MQTTPublisher|TopicFilterExplainer)\(")
#: A stderr or error output that reports a failure (warnings alone do not).
FAILURE_TEXT = re.compile(r"Traceback|\b\w*(Error|Exception)\b")
#: What a student types into a lab's Publisher, besides a body, to reach the lab's inbox.
PUBLISHER_INPUT = {"07": {"headers": "destination=Berlin"}}
#: What to type into a lab's RoutingExplainer: a routing key and headers (key=value lines).
EXPLAINER_INPUT = {"04": ("Stock A", ""), "05": ("sports.football.technology", ""),
                   "06": ("any.key.at.all", ""),
                   "07": ("", "destination=Berlin\ndelivery_method=express")}
EXPLAINER_DEFAULT = ("browser.test", "")
#: The topic typed into a TopicFilterExplainer: filters starting with a wildcard stop matching.
FILTER_TOPIC = "$SYS/broker/uptime"


def displayed_widgets(notebook: Path) -> set[str]:
    """The widget kinds a notebook's code constructs."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return {name for cell in cells if cell["cell_type"] == "code"
            for name in WIDGET_CALL.findall("".join(cell["source"]))}


def selected() -> list[tuple[str, Lab]]:
    """(``student`` or ``solution``, lab) pairs this run covers, in lab order."""
    labs = find_labs(LABS)
    if RUN_EVERY_NOTEBOOK:
        return [(kind, lab) for lab in labs for kind in ("student", "solution")]
    return [("student", lab) for lab in labs if displayed_widgets(lab.student)]


NOTEBOOKS = selected()


def cases() -> list:
    """(kind, lab, line) for every selected notebook on the process backend and the newest
    line (RabbitMQ 4.3 / Mosquitto 2.1 in Docker; ``make test-matrix``: every line)."""
    return [pytest.param(kind, lab, param.values[0], marks=param.marks,
                         id=f"{kind}/{lab.name}-{param.id}")
            for kind, lab in NOTEBOOKS for param in backend_params("full")]


@dataclass(frozen=True)
class LabServer:
    """JupyterLab serving ``root``: student notebooks in it, solutions in ``solutions/``."""

    server: JupyterServer
    root: Path


@contextlib.contextmanager
def serving_labs(backend, base: Path) -> Iterator[LabServer]:
    """A JupyterLab serving a labs folder under ``base``, its kernels on ``backend``'s brokers."""
    root = base / "labs"
    root.mkdir()
    # Lab 10 finds docker/mqtt-python above its folder, as in the checkout.
    (base / "docker").symlink_to(REPO / "docker", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
    env.update(backend_environment(backend))
    with jupyter_lab(root, env, base / "jupyter.log",
                     notebook_settings=ALL_CELLS_IN_DOM) as server:
        yield LabServer(server, root)


@pytest.fixture(scope="module")
def lab_lines(broker_factory, tmp_path_factory):
    """Per broker line, made on first use and kept for the module: brokers of the module's
    own (lab 00's BrokerPanel restarts them, 02 and 09 RabbitMQ) and one JupyterLab whose
    kernels use them. ``lab_lines(line)`` returns ``(backend, server)``."""
    made: dict[str, tuple[Any, LabServer]] = {}
    with contextlib.ExitStack() as stack:

        def get(line) -> tuple[Any, LabServer]:
            key = "process" if line == "process" else line.id
            if key not in made:
                backend = make_line_backend(broker_factory, line)
                base = tmp_path_factory.mktemp(f"browser-labs-{key.replace('/', '-')}")
                made[key] = (backend, stack.enter_context(serving_labs(backend, base)))
            return made[key]

        yield get


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for the module; every test opens a context of its own."""
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for stale in [*ARTIFACTS.glob("*.png"), ARTIFACTS / "timings.txt"]:
        stale.unlink(missing_ok=True)  # only this run's evidence
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                                      headless=True)
        yield launched
        launched.close()


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("kind", "lab", "line"), cases())
def test_lab_runs_all_and_its_widgets_work(kind: str, lab: Lab, line, lab_lines,
                                           browser) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    lab_backend, lab_server = lab_lines(line)
    endpoints = lab_backend.start()  # up again, should an earlier lab have left them down
    relative = f"{lab.name}.ipynb" if kind == "student" else f"solutions/{lab.name}.ipynb"
    notebook_file = fresh_copy(lab.student if kind == "student" else lab.solution,
                               lab_server.root / relative)
    where = "" if line == "process" else f"-{line.short_id}"
    shots = Shots(ARTIFACTS, f"{kind}-{lab.name}{where}")
    failures: list[str] = []
    clock = Clock()
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    try:
        notebook = open_notebook(page, lab_server.server, relative, STEP)
        clock.lap("open")
        run_all_cells(page)
        wait_until_run_done(page, notebook, RUN_ALL)
        clock.lap("run all")
        with contextlib.suppress(PlaywrightTimeout):  # a widget never drawn is reported below
            page.wait_for_function(ALL_WIDGETS_DRAWN, arg=notebook.element_handle(),
                                   timeout=DRAWN)
        cells = read_cells(notebook, code_cells_that_run(notebook_file))
        failures += cell_failures(cells)
        first_widget = notebook.locator(WIDGET_OUTPUT).filter(visible=True).first
        if first_widget.count():
            first_widget.scroll_into_view_if_needed()
        page.screenshot(path=shots.path())

        used = displayed_widgets(lab.student if kind == "student" else lab.solution)
        checks = WidgetChecks(page, notebook, lab.name[:2], endpoints, shots, failures)
        if "Publisher" in used:
            checks.soft("Publisher → QueueInbox", checks.publisher)
        if "TopologyView" in used:
            checks.soft("TopologyView Refresh", checks.topology)
        if "RoutingExplainer" in used:
            checks.soft("RoutingExplainer", checks.routing_explainer)
        if "MQTTPublisher" in used:
            checks.soft("MQTTPublisher → MQTTInbox", checks.mqtt_publisher)
        if "TopicFilterExplainer" in used:
            checks.soft("TopicFilterExplainer", checks.topic_filter)
        if "BrokerPanel" in used:
            checks.soft("BrokerPanel restart", lambda: checks.broker_panel(lab_backend))
        clock.lap("widgets")
        if failures:
            page.screenshot(path=shots.path("failure"))
    except Exception:
        page.screenshot(path=shots.path("failure"))
        raise
    finally:
        context.close()
        lab_server.server.shut_down_sessions()  # the lab's consumers stop with its kernel
        clock.record(ARTIFACTS / "timings.txt", f"{kind}/{lab.name}{where}")
    assert not failures, f"{kind}/{lab.name}{where}:\n- " + "\n- ".join(failures)


# Every widget output holds a drawn view (the last cells' widgets may still be rendering).
ALL_WIDGETS_DRAWN = """(panel) => [...panel.querySelectorAll('WIDGET')].every((o) => {
  const view = o.querySelector('.jupyter-widgets');
  return view && view.getBoundingClientRect().height > 0;
})""".replace("WIDGET", WIDGET_OUTPUT)


def cell_failures(cells: list[CellState]) -> list[str]:
    """What the cells show wrong: cells not run, error outputs, widgets no longer drawn."""
    failures = []
    not_run = [c.number for c in cells if c.should_run and not c.has_run]
    if not_run:
        failures.append(f"code cells not run (Run All stopped?): {not_run}")
    for cell in cells:
        for text in cell.stderr:
            if FAILURE_TEXT.search(text):
                failures.append(f"{cell.label} shows an error: {text.strip()[-1500:]}")
        gone = [n for n, drawn in enumerate(cell.widgets, start=1) if not drawn]
        if gone:
            failures.append(f"{cell.label}: widget output(s) {gone} of {len(cell.widgets)} no "
                            f"longer drawn (closed by a later cell?)")
    return failures


class Shots:
    """Screenshot paths: ``<stem>.png`` for the lab, ``<stem>-<what>.png`` for one widget."""

    def __init__(self, folder: Path, stem: str) -> None:
        self.folder, self.stem = folder, stem

    def path(self, what: str = "") -> Path:
        return self.folder / (f"{self.stem}-{what}.png" if what else f"{self.stem}.png")


class Clock:
    """Seconds per phase of one notebook's test, appended to ``timings.txt``."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.laps: list[tuple[str, float]] = []

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps.append((name, now - self.last))
        self.last = now

    def record(self, path: Path, name: str) -> None:
        phases = "  ".join(f"{phase} {seconds:5.1f} s" for phase, seconds in self.laps)
        with path.open("a", encoding="utf-8") as out:
            out.write(f"{name:<36} total {time.monotonic() - self.start:5.1f} s  {phases}\n")


class WidgetChecks:
    """One interaction per widget kind on an open, fully run lab notebook.

    Args:
        page: the browser page.
        notebook: the notebook panel's locator.
        lab: the lab's number, e.g. ``"07"``.
        endpoints: the brokers the notebook's kernel uses.
        shots: where screenshots go.
        failures: where a failed check's message goes (checks go on after one fails).
    """

    def __init__(self, page: Any, notebook: Any, lab: str, endpoints: Any, shots: Shots,
                 failures: list[str]) -> None:
        self.page, self.notebook, self.lab = page, notebook, lab
        self.endpoints, self.shots, self.failures = endpoints, shots, failures
        self.marker = f"browser-{lab}-{uuid.uuid4().hex[:6]}"

    def soft(self, name: str, check: Callable[[], None]) -> None:
        """Run ``check``; note its failure and go on with the next widget."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            check()
        except (AssertionError, PlaywrightError) as exc:
            self.failures.append(f"{name}: {str(exc).strip()[:1500]}")

    def widget(self, has: Any, what: str) -> Any:
        """The first widget output holding ``has``; fail at once when none is drawn."""
        found = self.notebook.locator(WIDGET_OUTPUT, has=has)
        assert found.count() > 0, f"no {what} is drawn in the notebook"
        return found.first

    def inboxes(self, title: str) -> Any:
        """The inbox widget outputs whose title starts with ``title``."""
        return self.notebook.locator(WIDGET_OUTPUT, has=self.page.locator(
            ".widget-html", has_text=re.compile(rf"^{re.escape(title)}\b")))

    def publisher(self) -> None:
        """Publish from the form; the message shows up in the lab's QueueInbox."""
        form = self.widget(self.page.locator(".widget-textarea", has_text="body"), "Publisher")
        for label, value in PUBLISHER_INPUT.get(self.lab, {}).items():
            form.locator(".widget-textarea, .widget-text", has_text=label).locator(
                "textarea, input").fill(value)
        form.locator(".widget-textarea", has_text="body").locator("textarea").fill(self.marker)
        self.publish_and_receive(form, "Inbox", "published to exchange", "publisher")

    def mqtt_publisher(self) -> None:
        """Publish from the MQTT form; the message shows up in the lab's MQTTInbox."""
        form = self.widget(self.page.locator(".widget-textarea", has_text="payload"),
                           "MQTTPublisher")
        form.locator(".widget-textarea", has_text="payload").locator("textarea").fill(
            self.marker)
        self.publish_and_receive(form, "MQTT inbox", "published to", "mqtt-publisher")

    def publish_and_receive(self, form: Any, inbox_title: str, published: str,
                            shot: str) -> None:
        from playwright.sync_api import expect

        inboxes = self.inboxes(inbox_title)
        assert inboxes.count() > 0, f"no {inbox_title} is drawn in the notebook"
        before = [received(inboxes.nth(n)) for n in range(inboxes.count())]
        form.get_by_role("button", name="Publish").click()
        expect(form).to_contain_text(published, timeout=STEP)
        expect(form).not_to_contain_text("NOT ")
        expect(form).not_to_contain_text("ERROR")
        inbox = inboxes.filter(has_text=self.marker)
        expect(inbox.first).to_be_visible(timeout=STEP)
        index = next(n for n in range(inboxes.count())
                     if self.marker in inboxes.nth(n).inner_text())
        assert received(inboxes.nth(index)) > before[index], "the inbox's counter did not grow"
        form.screenshot(path=self.shots.path(shot))
        inbox.first.screenshot(path=self.shots.path(f"{shot}-inbox"))

    def topology(self) -> None:
        """Declare a queue with the lab's prefix; after Refresh the picture shows it."""
        from playwright.sync_api import expect

        from mqkit.admin import Admin

        view = self.widget(self.page.locator(".widget-html svg"), "TopologyView")
        queue = f"lab{self.lab}.{self.marker}"
        admin = Admin(self.endpoints)
        admin.request("PUT", f"queues/%2F/{queue}", {"durable": False, "auto_delete": False})
        try:
            expect(view.locator("svg")).not_to_contain_text(queue)
            view.get_by_role("button", name="Refresh").click()
            expect(view.locator("svg")).to_contain_text(queue, timeout=STEP)
            view.screenshot(path=self.shots.path("topology"))
        finally:
            admin.delete_queue(queue)

    def routing_explainer(self) -> None:
        """A bad headers line is reported; a typed key shows the broker's bindings judged."""
        from playwright.sync_api import expect

        from mqkit.widgets import RoutingExplainerModel
        from mqkit.widgets.publisher import parse_headers
        from mqkit.widgets.routing_explainer import describe_binding

        explainer = self.widget(self.page.get_by_role("button", name="Re-read bindings"),
                                "RoutingExplainer")
        status = explainer.locator(".widget-label", has_text="read from the broker")
        expect(status).to_be_visible()
        exchange = status.inner_text().split(" (")[0]
        table = explainer.locator(".widget-html")
        before = table.inner_text()
        explainer.get_by_role("button", name="Re-read bindings").click()
        headers_field = explainer.locator(".widget-textarea", has_text="headers").locator(
            "textarea")
        headers_field.fill("no equals sign")
        expect(table).to_contain_text("has no '='", timeout=STEP)
        routing_key, headers = EXPLAINER_INPUT.get(self.lab, EXPLAINER_DEFAULT)
        headers_field.fill(headers)
        key_field = explainer.locator(".widget-text", has_text="routing key").locator("input")
        key_field.fill("")
        key_field.press_sequentially(routing_key)  # keystrokes, as a student types them
        model = RoutingExplainerModel.from_broker(self.endpoints, exchange)
        parsed = parse_headers(headers)
        expect(table.locator("p")).to_have_text(model.lines(routing_key, parsed)[-1],
                                                timeout=STEP)
        # One row per binding, in the model's order (a queue may be bound twice).
        matches = model.explain(routing_key, parsed)
        rows = table.locator("tbody tr")
        expect(rows).to_have_count(len(matches))
        for row, match in zip(rows.all(), matches, strict=True):
            expect(row).to_contain_text("✔ matched" if match else "✘ no")
            expect(row).to_contain_text(match.binding.destination)
            expect(row).to_contain_text(describe_binding(model.exchange_type, match.binding))
            expect(row).to_contain_text(match.reason)
        if model.exchange_type != "fanout":  # fanout ignores what is typed; the bad line above
            assert table.inner_text() != before, "the explanation did not change"
        explainer.screenshot(path=self.shots.path("routing-explainer"))

    def topic_filter(self) -> None:
        """Type a topic; the verdicts are the model's for the filters shown."""
        from playwright.sync_api import expect

        from mqkit.widgets import TopicFilterModel

        explainer = self.widget(self.page.locator(".widget-textarea", has_text="filters"),
                                "TopicFilterExplainer")
        filters = explainer.locator(".widget-textarea", has_text="filters").locator(
            "textarea").input_value().splitlines()
        field = explainer.locator(".widget-text", has_text="topic").locator("input")
        before = TopicFilterModel(filters, field.input_value()).lines()
        field.fill("")
        field.press_sequentially(FILTER_TOPIC)
        lines = TopicFilterModel(filters, FILTER_TOPIC).lines()
        assert lines != before, "pick a topic that changes a verdict of these filters"
        expect(explainer.locator("pre")).to_have_text("\n".join(lines), timeout=STEP)
        explainer.screenshot(path=self.shots.path("topic-filter"))

    def broker_panel(self, backend: Any) -> None:
        """Restart both brokers: ``restarting…``, then both running again."""
        from playwright.sync_api import expect

        panel = self.widget(self.page.get_by_role("button", name="Restart"),
                            "BrokerPanel")
        old_pids = broker_identities(backend, panel.inner_text())
        assert len(old_pids) == 2, panel.inner_text()
        panel.get_by_role("button", name="Restart").click()
        expect(panel).to_contain_text("restarting all…", timeout=STEP)
        panel.screenshot(path=self.shots.path("broker-panel-restarting"))
        expect(panel).to_contain_text(re.compile(r"restarted all in \d+ s"), timeout=RESTART)
        expect(panel.locator("td", has_text=re.compile(r"^running$"))).to_have_count(2)
        new_pids = broker_identities(backend, panel.inner_text())
        assert len(new_pids) == 2, panel.inner_text()
        assert not new_pids & old_pids, f"the same broker processes: {old_pids}, {new_pids}"
        panel.screenshot(path=self.shots.path("broker-panel"))
        assert all(s.is_running for s in backend.status()), backend.status()


def broker_identities(backend: Any, panel_text: str) -> set[str]:
    """What changes when the brokers really restart: the pids the panel shows (process
    backend), or each container's start time (docker: the panel names the containers)."""
    if backend.name != "docker":
        return set(re.findall(r"pid (\d+)", panel_text))
    engine = backend.client()
    return {engine.containers.get(backend.container_name(name)).attrs["State"]["StartedAt"]
            for name in ("rabbitmq", "mosquitto")}


def received(inbox: Any) -> int:
    """An inbox's counter: ``12 received, showing the last 10 (running)`` → 12."""
    text = inbox.locator(".widget-label", has_text="received").first.inner_text()
    match = re.match(r"\s*(\d+) received", text)
    assert match, f"unexpected inbox counter {text!r}"
    return int(match.group(1))
