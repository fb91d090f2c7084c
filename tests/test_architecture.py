"""The layer rules, checked on the source (AST only: no module is imported).

Each rule names what it guards; a failure lists `path:line: name` for every breach.
"""

from __future__ import annotations

import ast
import re
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {p.relative_to(ROOT).as_posix(): p for p in sorted((ROOT / "emulator").rglob("*.py"))}
MODULES = {p.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for p in SOURCES}


def references(path: str) -> list[tuple[int, str]]:
    """(line, dotted name) for every import and every use of an imported name, resolved
    through aliases (`from datetime import datetime as dt; dt.now()` → datetime.datetime.now),
    plus `.ATTR` for every attribute read on anything else."""
    tree = ast.parse(SOURCES[path].read_text(), path)
    package = path.removesuffix(".py").replace("/", ".").rsplit(".", 1)[0]
    aliases: dict[str, str] = {}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                bound = a.asname or a.name.split(".")[0]
                aliases[bound] = a.name if a.asname else bound
                found.append((node.lineno, a.name))
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
            module = ".".join(filter(None, [base if node.level else "", node.module or ""]))
            for a in node.names:
                aliases[a.asname or a.name] = f"{module}.{a.name}"
                found += [(node.lineno, module), (node.lineno, f"{module}.{a.name}")]
    for node in ast.walk(tree):
        chain: list[str] = []
        while isinstance(node, ast.Attribute):
            chain.insert(0, node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in aliases:
            found.append((node.lineno, ".".join([aliases[node.id], *chain])))
        elif chain:
            found.append((node.lineno, "." + chain[-1]))
    return found


def imported_modules(path: str) -> set[str]:
    """The emulator modules `path` imports (`from emulator import store` counts as store)."""
    refs = {name for _, name in references(path)}
    return {m for m in MODULES if m in refs and m != "emulator"}


ONLY_IN = [  # (what, names that start with this pattern, the only files that may use them)
    ("SQL", r"(aiosqlite|sqlite3)(\.|$)", ["emulator/store/*"]),
    (
        "subprocesses",
        r"(subprocess|asyncio\.(create_)?subprocess\w*|os\.(system|popen))(\.|$)",
        ["emulator/media.py"],
    ),
    (
        "time",
        r"(time\.(time|monotonic|perf_counter)(_ns)?|time\.sleep|asyncio\.sleep|"
        r"datetime\.(datetime\.(now|utcnow|today)|date\.today))$",
        ["emulator/clock.py"],
    ),
    (
        "aiohttp.web",
        r"aiohttp\.web(_\w+)?(\.|$)",
        [
            "emulator/app.py",
            "emulator/middleware.py",
            "emulator/faults.py",
            "emulator/routes/*",
            "emulator/testing.py",
            "emulator/cli.py",
        ],
    ),
    (
        "the clock's kind",
        r"(.*\.)?ManualClock(\.|$)|.*\.manual$",
        ["emulator/scheduler.py", "emulator/clock.py"],
    ),
]
# Scenarios and the timeline are pure data: they import values, never a use case.
PURE = ["emulator/scenarios/*", "emulator/timeline.py", "emulator/renditions.py"]
# Value modules they may import besides each other (a new one is added here on purpose).
VALUE_MODULES = {"emulator.models", "emulator.errors", "emulator.timeline", "emulator.renditions"}


@pytest.mark.parametrize(("what", "pattern", "allowed"), ONLY_IN, ids=[r[0] for r in ONLY_IN])
def test_only_its_layer_uses(what: str, pattern: str, allowed: list[str]) -> None:
    breaches = [
        f"{path}:{line}: {name}"
        for path in SOURCES
        if not any(fnmatch(path, glob) for glob in allowed)
        for line, name in references(path)
        if re.match(pattern, name)
    ]
    assert not breaches, f"{what} outside {allowed}:\n" + "\n".join(breaches)


def test_routes_never_import_the_store() -> None:
    breaches = {
        path: sorted(mods)
        for path in SOURCES
        if fnmatch(path, "emulator/routes/*")
        and (mods := {m for m in imported_modules(path) if re.match(r"emulator\.store(\.|$)", m)})
    }
    assert not breaches, breaches


def test_scenarios_and_the_timeline_import_no_use_case() -> None:
    breaches = {
        path: sorted(mods)
        for path in SOURCES
        if any(fnmatch(path, glob) for glob in PURE)
        and (
            mods := {
                m
                for m in imported_modules(path)
                if m not in VALUE_MODULES and not m.startswith("emulator.scenarios")
            }
        )
    }
    assert not breaches, breaches
