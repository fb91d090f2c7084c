"""pytest plugin (entry point `pytest11`): the `livepeer_emulator` fixtures and marker.

- `livepeer_emulator_server` (session): one emulator per session, and so per xdist worker:
  started in-process on a free port with the manual clock, or, with
  `--livepeer-emulator-url URL` / `LIVEPEER_EMULATOR_URL`, an external one (a `serve`
  process or a container), driven through its `/_emulator/*` control plane. A server
  started with `--api-key` refuses fresh tenants: `livepeer_emulator_server.tenant(KEY)`
  gives a handle on a configured key, whose control calls stay scoped to its tenant.
- `livepeer_emulator` (function): an `emulator.testing.Emulator` with a fresh tenant, so
  tests never see each other's assets, time, scenario or journal, and need no reset.
- `@pytest.mark.livepeer_scenario(NAME | PATH | DICT)`: that scenario for the test.

Only the standard library is imported until a fixture is used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.testing import Emulator, InProcessServer, check_reachable, root_url

URL_OPTION = "--livepeer-emulator-url"
# The plugin's own switch, not a server setting: it says where the tests' server is.
URL_ENV = "LIVEPEER_EMULATOR_URL"
MARKER = "livepeer_scenario"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("livepeer-emulator")
    group.addoption(
        URL_OPTION,
        default=None,
        metavar="URL",
        help="use the livepeer-emulator already running at URL (http://HOST:PORT, with or "
        "without /api; start it with --clock manual) instead of starting one in-process "
        f"[env {URL_ENV}]",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(scenario): run the test under a livepeer-emulator scenario: a shipped "
        "name, a YAML file path or a dict, applied to this test's tenant only",
    )


class EmulatorServer:
    """Where the session's emulator is, and whether this session started it."""

    def __init__(self, base_url: str, in_process: InProcessServer | None = None) -> None:
        self.base_url = root_url(base_url)
        self.api_url = self.base_url + "/api"
        self.in_process = in_process

    def tenant(self, api_key: str | None = None) -> Emulator:
        """A handle on this server for a fresh tenant (or the given key's)."""
        return Emulator(self.base_url, api_key)


@pytest.fixture(scope="session")
def livepeer_emulator_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatorServer]:
    url = request.config.getoption(URL_OPTION) or os.environ.get(URL_ENV)
    if url:
        try:
            check_reachable(url)
        except ValueError as exc:
            raise pytest.UsageError(f"{URL_OPTION}: {exc}") from None
        yield EmulatorServer(url)
        return
    server = InProcessServer(tmp_path_factory.mktemp("livepeer-emulator")).start()
    try:
        yield EmulatorServer(server.base_url, server)
    finally:
        server.stop()


@pytest.fixture
def livepeer_emulator(
    request: pytest.FixtureRequest, livepeer_emulator_server: EmulatorServer
) -> Emulator:
    emulator = livepeer_emulator_server.tenant()
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        emulator.use_scenario(_marked_scenario(marker))
    return emulator


def _marked_scenario(marker: pytest.Mark) -> Any:
    if len(marker.args) != 1 or marker.kwargs:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER} takes one scenario: a shipped name, a file path or a dict"
        )
    return marker.args[0]
