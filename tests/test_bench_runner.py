"""`make bench` (bench/run.py): one table from every benchmark's summarise() lines, a MISS
for a missed target, a crash or a benchmark that reported nothing, and exit status 1 then;
the table replaces only what stands between the markers in bench/README.md."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


run = _load("run")


def _line(metric: str, met: bool | None, ratio: float = 1.0) -> dict[str, object]:
    return {
        "bench": "x",
        "metric": metric,
        "emulator": 10.0,
        "baseline": 10.0 / ratio,
        "unit": "req/s",
        "ratio": ratio,
        "target": ">= 0.9",
        "met": met,
    }


def test_every_figure_is_a_row_and_any_miss_fails_the_run() -> None:
    passed = run.Outcome(run.Bench("get_asset"), 0, 1.0, [_line("GET", True, 1.03)])
    missed = run.Outcome(run.Bench("startup"), 1, 1.0, [_line("start", False, 1.3)])
    table, ok = run.rows([passed])
    assert ok and table == [
        ["`get_asset.py`", "GET", "10.0 req/s", "9.71 req/s", "1.03", ">= 0.9", "PASS"]
    ]
    table, ok = run.rows([passed, missed])
    assert not ok and [r[-1] for r in table] == ["PASS", "MISS"]


def test_a_crash_a_timeout_or_no_figures_is_a_miss_of_its_own() -> None:
    crashed = run.Outcome(run.Bench("memory"), 2, 1.0, [])
    killed = run.Outcome(run.Bench("upload"), None, 1.0, [])
    silent = run.Outcome(run.Bench("list_assets"), 0, 1.0, [])
    other = run.Outcome(run.Bench("bench_tus", figures=False), 0, 1.0, [])
    table, ok = run.rows([crashed, killed, silent, other])
    assert not ok
    assert [(r[0], r[1], r[-1]) for r in table] == [
        ("`memory.py`", "failed: exit 2 (see its output)", "MISS"),
        ("`upload.py`", f"killed after {run.TIMEOUT_S // 60} min", "MISS"),
        ("`list_assets.py`", "reported no figures", "MISS"),
        ("`bench_tus.py`", "exit 0 (no figures)", "PASS"),
    ]


def test_a_benchmark_subprocess_reports_through_bench_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "fake.py"
    script.write_text(
        "import json, os\n"
        f"line = {json.dumps(_line('fake', False, 0.5))!r}\n"
        "with open(os.environ['BENCH_SUMMARY'], 'a') as out:\n"
        "    out.write(line + '\\n')\n"
        "print('measured')\n"
        "raise SystemExit(1)\n"
    )
    monkeypatch.setattr(run, "BENCH", tmp_path)
    outcome = run.run_one(run.Bench("fake"), quick=False)
    assert outcome.returncode == 1 and [x["metric"] for x in outcome.lines] == ["fake"]
    table, ok = run.rows([outcome])
    assert not ok and len(table) == 1 and table[0][-1] == "MISS"  # one row: the miss itself


def test_the_readme_table_is_rewritten_between_its_markers_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Benchmarks\nbefore\n{run.START}\nold table\n{run.END}\nafter\n")
    monkeypatch.setattr(run, "README", readme)
    assert run.write_readme("| new | table |")
    assert readme.read_text() == (
        f"# Benchmarks\nbefore\n{run.START}\n| new | table |\n{run.END}\nafter\n"
    )
    readme.write_text("no markers\n")
    assert not run.write_readme("| new |") and readme.read_text() == "no markers\n"


def test_the_real_readme_has_the_markers() -> None:
    text = (BENCH / "README.md").read_text(encoding="utf-8")
    assert text.count(run.START) == 1 and text.count(run.END) == 1
