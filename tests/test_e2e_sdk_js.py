"""End to end with the official TypeScript SDK (npm `livepeer`), run by node."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_MP4
from tests.helpers import npm_project

pytestmark = pytest.mark.e2e
PROJECT = Path(__file__).resolve().parent / "sdk-js"


@pytest.fixture(scope="module")
def node_project() -> Path:
    return npm_project(PROJECT, "livepeer", "the TypeScript SDK test")


def test_typescript_sdk_flow(node_project: Path, serve, key: str) -> None:
    server = serve("--clock", "manual")
    result = subprocess.run(
        ["node", "flow.mjs", server.root, key, str(SAMPLE_MP4)],
        cwd=node_project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "createdPhase": "uploading",
        "putStatus": 200,
        "advanceStatus": 200,
        "readyPhase": "ready",
        "duration": 2.0,
        "hasPlaybackUrl": True,
        "listed": True,
        "renamed": "renamed",
        "taskPhase": "completed",
        "playbackType": "vod",
        "importStatus": 201,
        "importPhase": "waiting",
        "afterDelete": 404,
    }
