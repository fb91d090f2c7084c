"""Scenarios without a server: validation messages, loading, plans and rule firing; and,
in-process, that the fault middleware marks what it injected for the request journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from emulator import scenarios, timeline
from emulator.app import create_app
from emulator.clock import ManualClock
from emulator.models import StepKind
from emulator.routes.common import INJECTED_FAULT
from emulator.rulebook import Rulebook
from emulator.scenarios import ScenarioError
from emulator.settings import Settings
from emulator.timeline import ProcessingFault, TimelineProfile


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        scenarios.load(str(path))
    assert str(caught.value).count(f"{path}:") == len(caught.value.problems)
    return [m.removeprefix(f"{path}:") for m in caught.value.messages]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nmae: x\n", "1: unknown key 'nmae' in the scenario; did you mean 'name'?"),
        (
            "timeline:\n  queue: 500\n",
            "2: timeline.queue: 500 is a duration without a unit; write 500ms or 500s",
        ),
        ("timeline:\n  processing: '3'\n", "2: timeline.processing: 3 is a duration without"),
        ("timeline:\n  queue: soon\n", "2: timeline.queue: 'soon' is not a duration with a unit"),
        ("timeline:\n  transcoding: 2s\n", "2: unknown phase 'transcoding' in timeline"),
        ("timeline:\n  procesing: 2s\n", "2: unknown phase 'procesing' in timeline; did you mean"),
        (
            "timeline:\n  progress_steps: many\n",
            "2: timeline.progress_steps must be a whole number",
        ),
        ("seed: [1]\n", "1: seed must be a whole number, not a list"),
        ("faults: {}\n", "1: faults must be a list of rules, not a mapping"),
        (
            "faults:\n  - match: {probability: 1.5}\n    delay: 1s\n",
            "2: faults[0].match.probability must be between 0 and 1, got 1.5",
        ),
        (
            "faults:\n  - match: {probability: -0.1}\n    delay: 1s\n",
            "2: faults[0].match.probability must be between 0 and 1, got -0.1",
        ),
        (
            "faults:\n  - delay: 1s\n    match:\n      path: '/api/[ab'\n",
            "4: faults[0].match.path: bad glob '/api/[ab': the '[' at position 6 is never closed",
        ),
        (
            "faults:\n  - delay: 1s\n    match: {path: api/asset}\n",
            "3: faults[0].match.path: bad glob 'api/asset': a path pattern starts with /",
        ),
        (
            "faults:\n  - import: {error: x}\n    match: {source_url: ''}\n",
            "3: faults[0].match.source_url: bad glob '': an empty pattern matches nothing",
        ),
        (
            "faults:\n  - delay: 1s\n    match: {method: GTE}\n",
            "3: faults[0].match.method: 'GTE' is not an HTTP method; did you mean 'GET'?",
        ),
        (
            "faults:\n  - respond: {status: 503}\n    match: {nth: 2nd}\n",
            "3: faults[0].match.nth must be a whole number, not the text '2nd'",
        ),
        ("faults:\n  - respond: {status: 99}\n", "2: faults[0].respond.status must be 200-599"),
        ("faults:\n  - respond: {body: x}\n", "2: faults[0].respond needs a status"),
        ("faults:\n  - delay: 2\n", "2: faults[0].delay: 2 is a duration without a unit"),
        (
            "faults:\n  - drop_connection: {after: 10}\n",
            "2: unknown key 'after' in faults[0].drop_connection; did you mean 'after_bytes'?",
        ),
        ("faults:\n  - match: {path: /x}\n", "2: faults[0] has no effect: add one of respond"),
        (
            "faults:\n  - respond: {status: 500}\n    processing: {fail_times: 1}\n",
            "2: faults[0] mixes respond and processing",
        ),
        (
            "faults:\n  - processing: {error: x}\n",
            "2: faults[0].processing needs fail_at_progress, fail_times or stall_at_progress",
        ),
        (
            "faults:\n  - processing: {fail_at_progress: 50%}\n",
            "2: faults[0].processing.fail_at_progress must be a number between 0 and 1, "
            "not the text '50%'",
        ),
        (
            "faults:\n  - processing: {stall_at_progress: 0.2, fail_times: 1}\n",
            "2: faults[0].processing: a task cannot both stall and fail",
        ),
        ("faults:\n  - import: {}\n", "2: faults[0].import needs an error message"),
        (
            "faults:\n  - match: {asset_name: x*}\n    respond: {status: 500}\n",
            "2: faults[0].match.asset_name only applies to processing, import and export faults",
        ),
        (
            "faults:\n  - match: {method: GET}\n    import: {error: x}\n",
            "2: faults[0].match.method only applies to HTTP faults",
        ),
        ("name: a\nname: b\n", "2: the scenario: 'name' is given twice"),
        ("faults:\n  - [1, 2]\n", "2: faults[0] must be a mapping, not a list"),
        ("timeline: {queue: 1s\n", "2: not valid YAML"),
        ("- just\n- a list\n", "1: the scenario must be a mapping, not a list"),
        ("", "1: empty scenario"),
    ],
)
def test_each_problem_names_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert any(m.startswith(expected) for m in found), found


def test_every_problem_is_reported_in_line_order(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "descripton: x\n"
        "timeline:\n"
        "  queue: 1\n"
        "faults:\n"
        "  - match: {probability: 3, tenant: 5}\n"
        "    delay: 1\n",
    )
    assert [m.split(":")[0] for m in found] == ["1", "3", "5", "5", "6"]


def test_issue_format_loads_as_written() -> None:
    scenario = scenarios.load(ISSUE_EXAMPLE)
    assert (scenario.name, scenario.seed, scenario.source) == ("flaky-api", 42, "<inline scenario>")
    assert scenario.timeline == TimelineProfile(queue_ms=500, processing_ms=3000, progress_steps=4)
    kinds = [rule.kind for rule in scenario.faults]
    assert kinds == ["http"] * 4 + ["processing"] * 3 + ["import"]
    first, _, delay, drop, fail, flaky, stuck, imports = scenario.faults
    assert first.match.nth == frozenset({2, 3}) and first.respond is not None
    assert first.respond.body == {"errors": ["service unavailable"]}
    assert delay.delay_ms == 1500
    assert (drop.drop, drop.drop_after_bytes) == (True, 3_145_728)
    assert fail.processing == ProcessingFault(
        error="Failed to transcode video: invalid codec", fail_at_progress=0.5
    )
    assert flaky.processing == ProcessingFault(error="transient error", fail_times=1)
    assert stuck.processing is not None and stuck.processing.stall_at_progress == 0.3
    assert imports.import_error == "failed to download: 404 Not Found"


def test_load_takes_a_name_a_path_or_inline_text(tmp_path: Path) -> None:
    assert scenarios.load("instant").timeline.queue_ms == 0
    path = tmp_path / "mine.yaml"
    path.write_text("timeline: {queue: 2s}\n")
    assert (scenarios.load(str(path)).name, scenarios.load(str(path)).timeline.queue_ms) == (
        "mine",
        2000,
    )
    assert scenarios.load('{"timeline": {"queue": "3s"}}').timeline.queue_ms == 3000
    with pytest.raises(scenarios.ConfigError, match="did you mean 'instant'"):
        scenarios.load("instnt")


def test_every_shipped_scenario_is_valid_and_described() -> None:
    for name, description in scenarios.listing():
        assert description and not description.startswith("INVALID"), name
        assert scenarios.load(name).name == name


# -- plans --------------------------------------------------------------------------------


def kinds_at(steps: list[Any]) -> list[tuple[int, str]]:
    return [(s.offset_ms, s.kind.value) for s in steps]


def test_plan_fail_times_retries_with_studios_delays() -> None:
    profile = TimelineProfile(queue_ms=500, processing_ms=1000, progress_steps=1)
    steps = timeline.plan(profile, fault=ProcessingFault(fail_times=3, error="e"))
    assert kinds_at(steps) == [
        (500, "start"),
        (500, "retry"),  # retry 1 ...
        (31_000, "start"),  # ... re-queued after 30 s
        (31_000, "retry"),  # retry 2, the last ...
        (211_500, "start"),  # ... after 3 min
        (211_500, "fail"),
    ]
    steps = timeline.plan(profile, fault=ProcessingFault(fail_times=1, error="e"))
    assert kinds_at(steps)[-1] == (32_000, "ready")


def test_plan_stall_and_media_scaling() -> None:
    profile = TimelineProfile(queue_ms=0, processing_ms=1000, progress_steps=4)
    stalled = timeline.plan(profile, fault=ProcessingFault(stall_at_progress=0.6))
    assert [s.progress for s in stalled] == [0.0, 0.25, 0.5, 0.6]
    assert all(s.kind in (StepKind.START, StepKind.PROGRESS) for s in stalled)
    scaled = TimelineProfile(queue_ms=0, processing_ms=1000, per_media_second_ms=500)
    assert timeline.plan(scaled, media_seconds=4.0)[-1].offset_ms == 3000


# -- rules ------------------------------------------------------------------------------


def test_rulebook_counts_per_tenant_and_restarts_on_a_new_scenario() -> None:
    scenario = scenarios.parse(
        "faults:\n  - match: {path: /a, nth: [2]}\n    respond: {status: 500}\n",
        source="t",
        default_name="t",
    )
    book = Rulebook(scenarios.DEFAULT_SCENARIO)
    assert not book.may_fault_http  # requests skip fault matching altogether
    book.use(scenario, None)
    assert book.may_fault_http
    fired = [bool(book.http_faults("k1", "GET", "/a")) for _ in range(3)]
    assert fired == [False, True, False]
    assert bool(book.http_faults("k2", "GET", "/a")) is False  # k2 has its own count
    assert bool(book.http_faults("k2", "GET", "/a")) is True
    book.forget("k1")
    assert [bool(book.http_faults("k1", "GET", "/a")) for _ in range(2)] == [False, True]
    assert book.in_force("k1") == (scenario, "global")
    book.drop(None)
    assert book.in_force("k1")[1] == "default"
    assert not book.may_fault_http


# -- the seam ---------------------------------------------------------------------------


async def test_injected_faults_are_marked_for_the_journal(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    scenario = scenarios.parse(
        "faults:\n"
        "  - match: {path: /api/asset, nth: [1]}\n"
        "    delay: 1ms\n"
        "  - match: {path: /api/asset, nth: [2]}\n"
        "    respond: {status: 503}\n",
        source="journal.yaml",
        default_name="journal",
    )
    app = create_app(
        Settings(data_dir=tmp_path / "data", clock="manual"),
        clock=ManualClock(start_ms=1_700_000_000_000),
        scenario=scenario,
    )
    marks: list[tuple[int, str | None]] = []

    @web.middleware
    async def journal(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        marks.append((response.status, request.get(INJECTED_FAULT)))
        return response

    app.middlewares.insert(0, journal)  # outermost, where the request journal sits
    client = await aiohttp_client(app)
    for _ in range(3):
        await client.get("/api/asset", headers={"Authorization": "Bearer k"})
    assert marks == [
        (200, "journal: faults[0] (line 2): delay 1ms"),
        (503, "journal: faults[1] (line 4): respond 503"),
        (200, None),
    ]


ISSUE_EXAMPLE = """\
name: flaky-api                 # defaults to the file name
description: 503s on request-upload and slow reads
seed: 42                        # makes every probability reproducible
timeline:                       # overrides of the processing timing; units s or ms
  queue: 0.5s                   # waiting → processing
  processing: 3s                # processing → ready
  progress_steps: 4
faults:                         # checked in order; each rule may fire many times
  - match: {method: POST, path: /api/asset/request-upload, nth: [2, 3]}
    respond: {status: 503, body: {errors: ["service unavailable"]}}
  - match: {method: GET, path: "/api/asset/*", probability: 0.2}
    respond: {status: 429, headers: {Retry-After: "1"}, body: {errors: ["rate limited"]}}
  - match: {path: "/api/asset/*"}
    delay: 1.5s
  - match: {path: /api/asset/upload/direct}
    drop_connection: {after_bytes: 3145728}
  - match: {asset_name: "fail-*"}
    processing: {fail_at_progress: 0.5, error: "Failed to transcode video: invalid codec"}
  - match: {asset_name: "flaky-*"}
    processing: {fail_times: 1, error: "transient error"}   # task retried (retries=1), then ready
  - match: {asset_name: "stuck-*"}
    processing: {stall_at_progress: 0.3}
  - match: {source_url: "*.mkv"}
    import: {error: "failed to download: 404 Not Found"}
"""
