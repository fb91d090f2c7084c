from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from emulator.app import create_app
from emulator.clock import ManualClock
from emulator.settings import Settings
from tests.serving import ServerProcess

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SAMPLE_MP4 = FIXTURES / "sample.mp4"
SAMPLE_WEBM = FIXTURES / "sample-640x360.webm"  # VP9, no audio: transcoded for playback
NOT_MEDIA = FIXTURES / "not-media.txt"


@pytest.fixture
def key() -> str:
    """A fresh tenant: with no keys configured, every bearer token is its own tenant."""
    return f"test-{uuid.uuid4()}"


@pytest.fixture
def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock(start_ms=1_700_000_000_000)


@pytest.fixture
async def client(aiohttp_client, tmp_path: Path, manual_clock: ManualClock) -> TestClient:  # type: ignore[no-untyped-def]
    """The emulator in-process, on a manual clock, with a fresh data dir."""
    app = create_app(Settings(data_dir=tmp_path / "data", clock="manual"), clock=manual_clock)
    return await aiohttp_client(app)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start real `livepeer-emulator serve` subprocesses; all are stopped afterwards."""
    started: list[ServerProcess] = []

    def start(
        *args: str, data_dir: Path | None = None, env: dict[str, str] | None = None
    ) -> ServerProcess:
        server = ServerProcess(data_dir or tmp_path / f"data{len(started)}", *args, env=env)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()
