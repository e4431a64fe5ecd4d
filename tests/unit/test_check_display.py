"""How a check result shows in a notebook: rich HTML, with the plain line as the fallback."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from mqkit import Endpoints
from mqkit.grading import Check, CheckResult, NotYet, Status

ENDPOINTS = Endpoints("amqp://u:p@127.0.0.1:1/%2F", "mqtt://u:p@127.0.0.1:2", "", "external")
LEVELS = ("think about bindings", "use the # wildcard", "queue_bind(routing_key='sports.#')")


def _passes(endpoints):
    return "queue 'lab02.orders' is durable"


def _not_yet(endpoints):
    raise NotYet("the queue is not connected to the exchange")


def _broken(endpoints):
    raise ConnectionRefusedError("refused")


def _no(endpoints):
    raise NotYet("no")


def _scripted(endpoints):
    raise NotYet("saw <script>alert('x')</script> & more")


class _Tree(HTMLParser):
    """The elements of an HTML fragment: tags opened, text, and whether every tag closed."""

    VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "wbr"})

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.open: list[str] = []
        self.texts: list[tuple[tuple[str, ...], str]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open[-1:] == [tag], f"</{tag}> closes {self.open}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.texts.append((tuple(self.open), data))

    def text_inside(self, tag: str) -> str:
        return "".join(data for where, data in self.texts if tag in where)

    def text(self) -> str:
        return "".join(data for _, data in self.texts)


def _html(result: CheckResult) -> _Tree:
    tree = _Tree(result._repr_html_())
    assert not tree.open, f"unclosed: {tree.open}"
    return tree


@pytest.mark.parametrize(("func", "symbol", "word", "plain"), [
    (_passes, "✔", "passed", "✔ passed  02.durable-queue: queue 'lab02.orders' is durable"),
    (_not_yet, "✘", "not yet", "✘ not yet  02.durable-queue: the queue is not connected to the "
                               "exchange Hint: think about bindings (more: hint=2)"),
    (_broken, "⚠", "could not check",
     "⚠ could not check  02.durable-queue: ConnectionRefusedError: refused Hint: Is the broker "
     "running? Run mqkit.start_brokers() again."),
], ids=["passed", "not-yet", "error"])
def test_symbol_word_title_and_id_render_and_the_line_is_unchanged(
        func, symbol: str, word: str, plain: str) -> None:
    result = Check("02.durable-queue", "a durable queue", LEVELS, func).run(ENDPOINTS)
    tree = _html(result)
    # The verdict in symbol and word, not colour alone; then the title and the id.
    assert f"{symbol} {word}" in tree.text_inside("strong")
    assert "a durable queue" in tree.text_inside("strong")
    assert "02.durable-queue" in tree.text_inside("code")
    assert result.title == "a durable queue"
    # The plain text (nbval's comparison, text-only front ends) is today's line, to the letter.
    assert result.line() == plain
    assert repr(result) == str(result) == plain


def test_passed_has_no_hints() -> None:
    tree = _html(Check("02.a", "a", LEVELS, _passes).run(ENDPOINTS))
    assert "details" not in tree.tags
    assert not any(level in tree.text() for level in LEVELS)


def test_first_level_only_in_a_closed_details_with_how_to_ask_for_more() -> None:
    result = Check("05.sports", "sports news", LEVELS, _not_yet).run(ENDPOINTS, hint_level=1)
    text = result._repr_html_()
    tree = _html(result)
    assert "details" in tree.tags
    assert "<details open" not in text  # a first hint waits to be opened
    assert "Hint (1 of 3)" in tree.text_inside("summary")
    assert LEVELS[0] in tree.text_inside("details")
    # Levels not asked for are nowhere in the HTML, not even hidden.
    for unasked in (LEVELS[1], LEVELS[2], "wildcard", "queue_bind", "sports.#"):
        assert unasked not in text
    assert "self_check(..., hint=2)" in tree.text_inside("details")


def test_levels_asked_for_show_open_and_numbered() -> None:
    second = Check("05.sports", "sports news", LEVELS, _not_yet).run(ENDPOINTS, hint_level=2)
    tree = _html(second)
    assert "<details open" in second._repr_html_()
    assert "Hints (2 of 3)" in tree.text_inside("summary")
    assert tree.tags.count("li") == 2
    assert tree.text_inside("li") == LEVELS[0] + LEVELS[1]
    assert "queue_bind" not in second._repr_html_()
    assert "hint=3" in tree.text()

    last = Check("05.sports", "sports news", LEVELS, _not_yet).run(ENDPOINTS, hint_level=9)
    tree = _html(last)
    assert "Hints (3 of 3)" in tree.text_inside("summary")
    assert LEVELS[2] in tree.text_inside("details")
    assert "hint=4" not in tree.text()
    assert "More help" not in tree.text()


def test_a_single_hint_is_summarised_as_hint() -> None:
    tree = _html(Check("02.a", "a", "declare it durable", _not_yet).run(ENDPOINTS))
    assert tree.text_inside("summary") == "Hint"
    assert "declare it durable" in tree.text_inside("details")
    assert "hint=2" not in tree.text()


def test_error_shows_the_broker_hint() -> None:
    tree = _html(Check("02.a", "a", LEVELS, _broken).run(ENDPOINTS))
    assert "ConnectionRefusedError: refused" in tree.text()
    assert "Is the broker running?" in tree.text_inside("details")
    assert LEVELS[0] not in tree.text()


def test_every_text_is_escaped() -> None:
    result = Check("02.a", "<b>bold</b> title", "use <x> & y", _scripted).run(ENDPOINTS)
    text = result._repr_html_()
    tree = _html(result)
    assert set(tree.tags).isdisjoint({"script", "b", "x"})
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in text
    assert "saw <script>alert('x')</script> & more" in tree.text()
    assert "<b>bold</b> title" in tree.text_inside("strong")
    assert "use <x> & y" in tree.text_inside("details")


def test_self_contained_and_wrapping_at_words() -> None:
    text = Check("02.a", "a", LEVELS, _not_yet).run(ENDPOINTS)._repr_html_()
    for absent in ("<script", "<style", "class=\"jp-", "onclick", "javascript:"):
        assert absent not in text
    # Words are not split: JupyterLab's text outputs break anywhere, this block must not.
    for present in ("white-space: normal", "word-break: normal", "overflow-wrap: normal"):
        assert present in text
    for absent in ("anywhere", "break-all", "<pre"):
        assert absent not in text
    # Text takes the theme's colour; only the left border is coloured.
    assert "color: inherit" in text
    assert "border-left: 4px solid" in text


def test_results_without_title_still_construct_positionally_and_compare_equal() -> None:
    old_style = CheckResult("02.a", Status.FAILED, "no", "do it", 0, 1, ("do it",), 0)
    assert old_style.title == ""
    assert "&middot;" not in old_style._repr_html_()  # no empty title slot
    ran = Check("02.a", "a title", "do it", _no).run(ENDPOINTS)
    assert ran == old_style  # the title describes; it does not change what was found


def test_ipython_shows_both_html_and_the_plain_line() -> None:
    formatters = pytest.importorskip("IPython.core.formatters")
    result = Check("02.a", "a", LEVELS, _not_yet).run(ENDPOINTS)
    data, _ = formatters.DisplayFormatter().format(result)
    assert data["text/plain"] == result.line()
    assert data["text/html"] == result._repr_html_()
