"""The README's examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_quick_start_is_two_make_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.split("#")[0].strip() for line in code_blocks("sh")[0].splitlines()]
    assert commands == ["make serve", "make test"]
    assert "make serve" in section and "make test" in section


@pytest.mark.e2e
def test_quick_start_sdk_example_runs(serve) -> None:
    example = next(b for b in code_blocks("python") if "lp.asset.create" in b)
    server = serve("--scenario", "instant")
    script = example.replace("http://127.0.0.1:3000", server.root)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    phase, duration, playback_url = result.stdout.split()
    assert (phase, float(duration)) == ("ready", 2.0)
    assert playback_url.startswith(server.root + "/hls/")
    assert playback_url.endswith("/index.m3u8")


def test_every_setting_is_documented() -> None:
    from emulator.settings import OPTIONS

    for option in OPTIONS:
        assert f"`{option.env_var}`" in README, option.env_var
        if option.flag:
            assert f"`--{option.name.replace('_', '-')}`" in README, option.name


def test_shipped_scenario_list_is_the_scenarios_directory() -> None:
    shipped = re.search(r"\*\*Shipped\*\*: .*? shows them: (.*?`)\.\s", README, flags=re.S)
    assert shipped, "the README's **Shipped** scenario list is gone"
    listed = re.findall(r"`([\w-]+)`", shipped.group(1))
    assert len(listed) == len(set(listed)), listed
    assert sorted(listed) == sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml"))


def test_handle_table_lists_every_public_member() -> None:
    from emulator.testing import Emulator

    table = README.split("The handle (`emulator.testing.Emulator`):", 1)[1].split("\n\n")[1]
    first_cells = [row.split(" | ")[0] for row in table.splitlines()[2:]]
    listed = re.findall(r"`(\w+)", " ".join(first_cells))
    handle = Emulator("http://127.0.0.1:1")  # attributes set in __init__ count too
    public = {n for n in [*vars(Emulator), *vars(handle)] if not n.startswith("_")}
    assert len(listed) == len(set(listed)), listed
    assert sorted(listed) == sorted(public)
