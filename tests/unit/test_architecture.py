"""The design's picture holds: layers import downward only, and clients are built in one place.

The layers are the README's "Architecture" table; a module may import its own layer and the
layers below it, never one above. Imports inside functions count too: a lazy upward import is
still an upward dependency.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import mqkit

PACKAGE = Path(mqkit.__file__).resolve().parent
README = PACKAGE.parent / "README.md"

#: Bottom to top; the name is the first part below ``mqkit`` (a module or a subpackage).
LAYERS: list[set[str]] = [
    {"exceptions", "urls", "config", "endpoints", "errors_amqp", "routing", "mqtt_session",
     "optional"},
    {"clients"},
    {"brokers", "admin", "security"},
    {"grading", "widgets", "jupyter_proxy", "classroom"},
    {"authoring", "cli", "notebook", "__init__", "__main__"},
]

#: Where each kind of client may be constructed (paths relative to the package).
CONSTRUCTORS = {
    r"\bBlockingConnection\(|\bSelectConnection\(": "clients/amqp.py",
    r"\bmqtt\.Client\(": "clients/mqtt.py",
    r"\burlopen\(|\burllib\.request\.Request\(|\bhttp\.client\b|\bimport requests\b|\bhttpx\b":
        "clients/management.py",
}


def _layer(name: str) -> int:
    for index, members in enumerate(LAYERS):
        if name in members:
            return index
    raise AssertionError(f"mqkit.{name} is in no layer: add it to LAYERS and the README")


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every mqkit import in ``path`` (``from mqkit import x``: x)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("mqkit")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "mqkit":
                found += [(node.lineno, f"mqkit.{a.name}") for a in node.names
                          if (PACKAGE / a.name).is_dir() or (PACKAGE / f"{a.name}.py").exists()]
                if any(not ((PACKAGE / a.name).is_dir() or (PACKAGE / f"{a.name}.py").exists())
                       for a in node.names):
                    found.append((node.lineno, "mqkit"))
            elif node.module.startswith("mqkit."):
                found.append((node.lineno, node.module))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_upward(path: Path) -> None:
    own = _top(".".join(("mqkit", *path.relative_to(PACKAGE).with_suffix("").parts)))
    if path.name == "__init__.py" and path.parent == PACKAGE:
        own = "__init__"
    upward = [f"line {line}: {module} (layer {_layer(_top(module))} > {_layer(own)})"
              for line, module in _imports(path)
              if _top(module) != own and _layer(_top(module)) > _layer(own)]
    assert not upward, f"{path.relative_to(PACKAGE)} imports upward: {upward}"


def test_every_top_level_module_has_a_layer() -> None:
    names = {p.stem for p in PACKAGE.glob("*.py")} | {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    for name in names:
        _layer(name)


def test_readme_draws_the_same_layers() -> None:
    text = README.read_text()
    section = text.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"\|\s*\d", line)]
    drawn = [set(re.findall(r"`([\w_]+)`", row.split("|")[2])) for row in rows]
    assert drawn == LAYERS


@pytest.mark.parametrize("pattern", sorted(CONSTRUCTORS))
def test_clients_are_built_in_one_module(pattern: str) -> None:
    allowed = PACKAGE / CONSTRUCTORS[pattern]
    offenders = [str(p.relative_to(PACKAGE)) for p in MODULES
                 if p != allowed and re.search(pattern, _code(p))]
    assert not offenders, f"{pattern} outside {CONSTRUCTORS[pattern]}: {offenders}"
    assert re.search(pattern, _code(allowed)), "the rule names the module that builds them"


def _code(path: Path) -> str:
    """The module without comments and strings (a hint or docstring may name a call)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
    return ast.unparse(tree)
