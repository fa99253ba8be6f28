"""The floors of the house (docs/architecture.md), enforced: every import in incidentbot/**/*.py,
function-local and TYPE_CHECKING ones included, runs sideways or down, never up; the shells
(api/, slack/, console/, logship.py) never import one another, and cli.py none of them but
logship.

The floors are data below. A new module must be put on one (the test says which is missing).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "incidentbot"

# floor -> (its units, the floors it may import besides its own). A unit is a top-level module or
# package of incidentbot (`incidentbot.X`); everything inside a package lives on its floor.
FLOORS: dict[str, tuple[set[str], set[str]]] = {
    # Runs outside the service, or plays Slack: imports nothing of the bot.
    "outside": ({"reporter", "localslack"}, set()),
    # Pure cores and plain values: parsing, fingerprints, analysis, runbooks, the simulator,
    # ids, host names, settings, log format, cause classes and categories, Block Kit primitives (blocks.py:
    # what slack/ and digest/ both build messages from, with the one mrkdwn escape).
    "core": (
        {
            "signatures",
            "analysis",
            "ingest",
            "runbooks",
            "simulate",
            "ids",
            "hosts",
            "settings",
            "logs",
            "causes",
            "categories",
            "blocks",
        },
        set(),
    ),
    # Tables and the database, and what reads only them (audit log, metrics).
    "data": ({"models", "db", "migrations", "audit", "metrics"}, {"core"}),
    # Everything that touches the database, the read model included.
    "services": ({"services"}, {"core", "data"}),
    # Builds the services once; the background triggers.
    "runtime": ({"runtime", "workers"}, {"core", "data", "services"}),
    # The weekly digest: computes over services, renders for Slack, schedules; below the shells.
    "features": ({"digest"}, {"core", "data", "services", "runtime"}),
    # Thin shells that only translate; siblings that never import one another (SIBLINGS).
    "shells": (
        {"api", "slack", "console", "logship"},
        {"outside", "core", "data", "services", "runtime", "features"},
    ),
    # Entry points and the assembly of the shells into one app.
    "entry": (
        {"app", "server", "cli", "__main__", "__init__"},
        {"outside", "core", "data", "services", "runtime", "features", "shells"},
    ),
}
SIBLINGS = "shells"
# The CLI is a shell as well (it shows the read model like the others) that also starts the
# server: it sits with the entry points, but reaches the HTTP, Slack and console shells only
# through server.py and app.py.
APART: dict[str, set[str]] = {"cli": {"api", "slack", "console"}}

UNIT_FLOOR = {unit: floor for floor, (units, _) in FLOORS.items() for unit in units}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imported(module: str, source: str, *, is_package: bool = False) -> list[tuple[str, int]]:
    """Every incidentbot module `source` imports (anywhere in it), with its line."""
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "incidentbot":  # `from incidentbot import signatures`: the names are modules
                out += [(f"incidentbot.{a.name}", node.lineno) for a in node.names]
            else:
                out.append((target, node.lineno))
    return [(t, line) for t, line in out if t == "incidentbot" or t.startswith("incidentbot.")]


def problems(module: str, source: str, *, is_package: bool = False) -> list[str]:
    """What is wrong with `module`'s imports: upward ones, sibling shells, units on no floor."""
    src_unit = unit_of(module)
    if src_unit not in UNIT_FLOOR:
        return [f"{module}: incidentbot.{src_unit} is on no floor (add it to FLOORS)"]
    src_floor = UNIT_FLOOR[src_unit]
    allowed = FLOORS[src_floor][1] | {src_floor}
    out = []
    for target, line in imported(module, source, is_package=is_package):
        dst_unit = unit_of(target)
        if dst_unit == src_unit:
            continue
        if dst_unit not in UNIT_FLOOR:
            out.append(f"{module}:{line} imports {target}: incidentbot.{dst_unit} is on no floor (add it to FLOORS)")
            continue
        dst_floor = UNIT_FLOOR[dst_unit]
        if dst_floor not in allowed:
            out.append(f"{module}:{line} imports {target}: {src_floor} may not import {dst_floor}")
        elif src_floor == dst_floor == SIBLINGS:
            out.append(f"{module}:{line} imports {target}: shells are siblings and never import one another")
        elif dst_unit in APART.get(src_unit, ()):
            out.append(f"{module}:{line} imports {target}: {src_unit} keeps apart from {dst_unit}")
    return out


def tree() -> list[tuple[str, str, bool]]:
    return [
        (module_name(p), p.read_text(encoding="utf-8"), p.name == "__init__.py") for p in sorted(PACKAGE.rglob("*.py"))
    ]


def test_no_import_runs_upward_or_between_shells():
    found = []
    for module, source, is_package in tree():
        found += problems(module, source, is_package=is_package)
    assert not found, "imports against the floors (docs/architecture.md):\n  " + "\n  ".join(found)


def test_every_unit_is_on_one_floor():
    units = [u for floor, (members, _) in FLOORS.items() for u in members]
    assert len(units) == len(set(units)), "a unit on two floors"
    on_disk = {unit_of(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert on_disk <= set(UNIT_FLOOR), f"on no floor: {sorted(on_disk - set(UNIT_FLOOR))}"


# (module, its source, what must be found: a fragment of the problem, or None for allowed).
CASES = [
    # allowed: down and sideways
    ("incidentbot.slack.commands", "from incidentbot.services.readmodel import ReadModel", None),
    ("incidentbot.api.routes.events", "from incidentbot.api.deps import ReadAuth", None),
    ("incidentbot.slack.publish", "def f():\n    from incidentbot.digest import render_blocks", None),
    ("incidentbot.console", "from incidentbot.localslack import SlackSimulator", None),
    ("incidentbot.app", "from incidentbot.api import create_app\nfrom incidentbot.slack.app import x", None),
    ("incidentbot.services.ingest", "from incidentbot import signatures as sigengine", None),
    ("incidentbot.localslack.state", "from .faults import FaultPlan", None),
    # known wrong: up from services and the cores, between shells, hidden in functions
    (
        "incidentbot.services.votes",
        "from incidentbot.slack.views import thread_note_text",
        "services may not import shells",
    ),
    ("incidentbot.services.readmodel", "import incidentbot.api.schemas", "services may not import shells"),
    ("incidentbot.signatures.engine", "def f():\n    from incidentbot.models import Event", "core may not import data"),
    ("incidentbot.analysis", "from incidentbot.services import hypotheses", "core may not import services"),
    ("incidentbot.slack.commands", "from incidentbot.api import schemas", "shells are siblings"),
    ("incidentbot.console", "def page():\n    from incidentbot.api.schemas import X", "shells are siblings"),
    ("incidentbot.api.routes.events", "from ...slack import views", "shells are siblings"),
    ("incidentbot.digest.render", "from incidentbot.slack.views import x", "features may not import shells"),
    ("incidentbot.digest.render", "from incidentbot.blocks import esc, section", None),
    ("incidentbot.runtime", "from incidentbot.app import build_app", "runtime may not import entry"),
    ("incidentbot.localslack.api", "from incidentbot.models import Event", "outside may not import data"),
    (
        "incidentbot.cli",
        "def cmd():\n    from incidentbot.api.schemas import hypotheses_list",
        "cli keeps apart from api",
    ),
    ("incidentbot.cli", "from incidentbot.server import serve", None),
    ("incidentbot.services.x", "from incidentbot.nowhere import y", "on no floor"),
    ("incidentbot.newthing", "import os", "on no floor"),
]


@pytest.mark.parametrize("module,source,expected", CASES)
def test_the_floor_rules_catch_what_they_should(module, source, expected):
    found = problems(module, source)
    if expected is None:
        assert found == []
    else:
        assert any(expected in p for p in found), found


def test_a_packages_own_relative_import_resolves_inside_it():
    # In incidentbot/api/__init__.py, `from .app import x` is incidentbot.api.app, not incidentbot.app.
    assert imported("incidentbot.api", "from .app import create_app", is_package=True) == [("incidentbot.api.app", 1)]
    assert imported("incidentbot.api.routes.ops", "from ..deps import X") == [("incidentbot.api.deps", 1)]
