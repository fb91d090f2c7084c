"""The pytest plugin as users meet it: example suites run by pytest in a temp project.

The examples in examples/pytest run verbatim (the README shows one of them), in-process,
with two xdist workers, and against a real `serve --clock manual` process.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.testing import Emulator, root_url
from tests.conftest import FIXTURES

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "pytest"
EXAMPLE_TESTS = 11  # the tests in examples/pytest, all expected to pass


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A temp project laid out like this repository: examples/pytest/ and fixtures/."""
    monkeypatch.delenv("LIVEPEER_EMULATOR_URL", raising=False)
    target = pytester.path / "examples" / "pytest"
    target.mkdir(parents=True)
    for example in EXAMPLES.iterdir():
        if example.is_file():
            shutil.copy(example, target / example.name)
    (pytester.path / "fixtures").symlink_to(FIXTURES)
    return pytester


def run_examples(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    result = project.runpytest_subprocess("examples/pytest", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=EXAMPLE_TESTS)
    return result


def test_examples_pass_with_an_in_process_server(project: pytest.Pytester) -> None:
    run_examples(project)


def test_examples_pass_with_two_xdist_workers(project: pytest.Pytester) -> None:
    result = run_examples(project, "-n", "2")
    result.stdout.fnmatch_lines(["*2 workers*"])


@pytest.mark.e2e
def test_examples_pass_against_a_serve_process_shared_by_two_workers(
    project: pytest.Pytester, serve
) -> None:
    server = serve("--clock", "manual")
    # The API URL is accepted as well as the root.
    run_examples(project, f"--livepeer-emulator-url={server.api_url}", "-n", "2")
    # The tests really ran against that server: their tenants' calls are in its journal.
    status, calls = server.request("GET", "/_emulator/requests?method=PUT")
    assert status == 200
    tenants = {c["tenant"] for c in calls if c["path"] == "/api/asset/upload/direct"}
    assert len(tenants) >= 6 and all(t.startswith("pytest-") for t in tenants), tenants


@pytest.mark.e2e
def test_env_var_names_the_external_server(
    pytester: pytest.Pytester, serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve("--clock", "manual")
    monkeypatch.setenv("LIVEPEER_EMULATOR_URL", server.root)
    pytester.makepyfile(
        f"""
        def test_uses_it(livepeer_emulator, livepeer_emulator_server):
            assert livepeer_emulator.api_url == "{server.api_url}"
            assert livepeer_emulator_server.in_process is None
            status, assets = livepeer_emulator.request("GET", "/api/asset")
            assert (status, assets) == (200, [])
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    status, calls = server.request("GET", "/_emulator/requests")
    assert status == 200 and [c["path"] for c in calls] == ["/api/asset"]


@pytest.mark.e2e
def test_a_real_clock_server_is_refused_clearly(pytester: pytest.Pytester, serve) -> None:
    server = serve()  # --clock real: time cannot be moved by tests
    pytester.makepyfile(
        """
        def test_advance(livepeer_emulator):
            livepeer_emulator.advance(1)
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--livepeer-emulator-url={server.root}"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*EmulatorError: advancing the clock answered 400*start the server with --clock manual*"]
    )


NOT_READY = """
from pathlib import Path

NOT_MEDIA = Path({not_media!r})
VIDEO = Path({video!r})


def test_not_a_video(livepeer_emulator):
    asset = livepeer_emulator.upload(NOT_MEDIA, name="notes")
    livepeer_emulator.wait_for_asset(asset["id"])


def test_never_uploaded(livepeer_emulator):
    asset = livepeer_emulator.sdk().asset.create(request={{"name": "empty"}}).data.asset
    livepeer_emulator.wait_for_asset(asset.id, timeout=5)


def test_ready_when_failure_was_expected(livepeer_emulator):
    asset = livepeer_emulator.upload(VIDEO)
    livepeer_emulator.wait_for_asset(asset["id"], phase="failed")
"""


def test_failing_tests_report_the_assets_error_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        NOT_READY.format(
            not_media=str(FIXTURES / "not-media.txt"), video=str(FIXTURES / "sample.mp4")
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    out = result.stdout.str()
    assert re.search(
        r"AssetPhaseError: asset [0-9a-f-]{36} ended 'failed', not 'ready': "
        r"errorMessage 'Failed to probe file: Invalid data",
        out,
    ), out
    assert re.search(r'status: \{"phase": "failed", .*"errorMessage": "Failed to probe', out)
    assert re.search(
        r"asset [0-9a-f-]{36} is still 'uploading' with nothing more planned, not 'ready' "
        r"\(was its file ever uploaded\?\)",
        out,
    ), out
    assert re.search(r"asset [0-9a-f-]{36} ended 'ready', not 'failed'", out), out


def test_an_unknown_scenario_fails_the_test_with_the_servers_reason(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.livepeer_scenario("transcode-fail")
        def test_marked(livepeer_emulator):
            pass

        def test_inline(livepeer_emulator):
            livepeer_emulator.use_scenario({"timeline": {"queue": "soon"}})
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*scenario 'transcode-fail' was refused (400)*did you mean 'transcode-fails'?*",
            "*scenario {'timeline': {'queue': 'soon'}} was refused (400)*timeline.queue*",
        ]
    )


def test_unreachable_external_server_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one(livepeer_emulator):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--livepeer-emulator-url", "http://127.0.0.1:9"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cannot reach the emulator at http://127.0.0.1:9/_emulator*"])


def test_importing_the_plugin_imports_no_server_code(pytester: pytest.Pytester) -> None:
    """A project that never uses the fixture pays nothing: not even aiohttp is imported.
    (pytest-aiohttp, installed here, would import aiohttp itself, so it is switched off.)"""
    pytester.makepyfile(
        """
        import sys

        def test_untouched():
            heavy = ("aiohttp", "aiosqlite", "yaml", "emulator.app")
            assert [m for m in heavy if m in sys.modules] == []
            assert "emulator.pytest_plugin" in sys.modules
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:aiohttp")
    result.assert_outcomes(passed=1)


def test_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    points = importlib.metadata.entry_points(group="pytest11")
    assert [p.value for p in points if p.name == "livepeer_emulator"] == ["emulator.pytest_plugin"]
    help_text = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--livepeer-emulator-url=URL" in help_text


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
        ("http://127.0.0.1:3000/", "http://127.0.0.1:3000"),
        ("http://127.0.0.1:3000/api", "http://127.0.0.1:3000"),
        (" https://emulator.internal/api/ ", "https://emulator.internal"),
    ],
)
def test_root_url_accepts_the_root_or_the_api_url(given: str, root: str) -> None:
    assert root_url(given) == root
    handle = Emulator(given)
    assert (handle.base_url, handle.api_url) == (root, root + "/api")
    assert handle.api_key.startswith("pytest-") and handle.api_key != Emulator(given).api_key


@pytest.mark.parametrize("given", ["127.0.0.1:3000", "ftp://host/api", "http://"])
def test_root_url_refuses_what_is_not_a_server_url(given: str) -> None:
    with pytest.raises(ValueError, match="not an emulator URL"):
        root_url(given)


def test_readme_shows_a_tested_example_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Testing with pytest", 1)[1].split("\n## ", 1)[0]
    shown = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert (EXAMPLES / "test_upload.py").read_text() in shown
