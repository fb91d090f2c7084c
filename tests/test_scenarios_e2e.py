"""Scenarios end to end: every fault effect, match key and shipped scenario against a real
`livepeer-emulator serve`, showing what a client sees.

One server (manual clock) serves most tests: each test has its own API key and puts its
scenario in force for that tenant only, through PUT /_emulator/scenario.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from livepeer import Livepeer
from livepeer.models import errors
from livepeer.utils import BackoffStrategy, RetryConfig

from emulator.scenarios import RULE_KEYS
from tests.conftest import SAMPLE_MP4
from tests.serving import ServerProcess, emulator_command

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.stem for p in (REPO / "scenarios").glob("*.yaml"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("scenarios") / "data", "--clock", "manual")
    yield proc.start()
    proc.stop()


class Client:
    """Plain HTTP as one tenant, with the few calls these tests repeat."""

    def __init__(self, server: ServerProcess, key: str) -> None:
        self.server = server
        self.key = key

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.server.request(method, path, body, self.key)

    def raw(
        self, method: str, path: str, data: bytes | None = None, *, key: bool = True
    ) -> tuple[int, dict[str, str], bytes]:
        """A request with a raw body; returns status, headers and the body bytes."""
        url = path if path.startswith("http") else self.server.root + path
        req = urllib.request.Request(url, data=data, method=method)
        if key:
            req.add_header("Authorization", f"Bearer {self.key}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def use(self, scenario: Any, scope: str = "") -> dict[str, Any]:
        """Put a scenario (a mapping, sent as JSON, or YAML text) in force; asserts 200."""
        data = scenario.encode() if isinstance(scenario, str) else json.dumps(scenario).encode()
        query = f"?scope={scope}" if scope else ""
        status, _, body = self.raw("PUT", "/_emulator/scenario" + query, data)
        assert status == 200, body
        return dict(json.loads(body))

    def upload(self, name: str, media: Path = SAMPLE_MP4) -> tuple[str, str]:
        """request-upload + direct PUT; returns (asset id, task id)."""
        status, created = self.call("POST", "/api/asset/request-upload", {"name": name})
        assert status == 200, created
        put, _, body = self.raw("PUT", created["url"], media.read_bytes(), key=False)
        assert put == 200, body
        return created["asset"]["id"], created["task"]["id"]

    def asset(self, asset_id: str) -> dict[str, Any]:
        status, body = self.call("GET", f"/api/asset/{asset_id}")
        assert status == 200, body
        return dict(body)

    def task(self, task_id: str) -> dict[str, Any]:
        status, body = self.call("GET", f"/api/task/{task_id}")
        assert status == 200, body
        return dict(body)

    def advance(self, seconds: float) -> None:
        self.server.advance(seconds, self.key)

    def statuses(self, method: str, path: str, count: int, body: Any = None) -> list[int]:
        return [self.call(method, path, body)[0] for _ in range(count)]


@pytest.fixture
def api(server: ServerProcess, key: str) -> Client:
    return Client(server, key)


def other(api: Client) -> Client:
    return Client(api.server, api.key + "-other")


# -- HTTP effects ---------------------------------------------------------------------


def test_flaky_api_answers_503_on_the_2nd_and_3rd_request_upload(api: Client) -> None:
    """Shipped `flaky-api`; effect `respond` (status + body), match keys method, path, nth."""
    api.use({"name": "flaky-api"})
    statuses, bodies = [], []
    for i in range(4):
        status, body = api.call("POST", "/api/asset/request-upload", {"name": f"v{i}"})
        statuses.append(status)
        bodies.append(body)
    assert statuses == [200, 503, 503, 200]
    assert bodies[1] == bodies[2] == {"errors": ["service unavailable"]}
    # Only request-upload was counted: another route and another tenant are untouched.
    assert api.call("GET", "/api/task")[0] == 200
    assert other(api).call("POST", "/api/asset/request-upload", {"name": "x"})[0] == 200


def test_the_sdk_sees_the_503_and_its_retries_get_through(api: Client) -> None:
    api.use({"name": "flaky-api"})
    sdk = Livepeer(api_key=api.key, server_url=api.server.api_url)
    assert sdk.asset.create(request={"name": "first"}).data is not None
    with pytest.raises(errors.SDKError) as failed:
        sdk.asset.create(request={"name": "second"})
    assert failed.value.status_code == 503
    assert json.loads(failed.value.body) == {"errors": ["service unavailable"]}
    # The SDK's own retry on 5xx rides over the third (503) to the fourth (200).
    retry = RetryConfig("backoff", BackoffStrategy(1, 2, 1.1, 5000), False)
    created = sdk.asset.create(request={"name": "third"}, retries=retry).data
    assert created is not None and created.asset.name == "third"


def test_rate_limited_answers_429_with_retry_after_for_calls_3_to_5(api: Client) -> None:
    """Shipped `rate-limited`; `respond` headers."""
    api.use({"name": "rate-limited"})
    seen = [api.raw("GET", "/api/asset") for _ in range(6)]
    assert [status for status, _, _ in seen] == [200, 200, 429, 429, 429, 200]
    _, headers, body = seen[2]
    assert headers["Retry-After"] == "2"
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"errors": ["Too many requests, please try again later."]}


def test_respond_without_a_body_gives_studios_error_shape(api: Client) -> None:
    api.use({"faults": [{"match": {"path": "/api/asset"}, "respond": {"status": 502}}]})
    status, headers, body = api.raw("GET", "/api/asset")
    assert status == 502
    assert json.loads(body) == {"errors": ["bad gateway"]}
    # A text body is sent as written, as a proxy's error page would be.
    api.use(
        "faults:\n"
        "  - match: {path: /api/asset}\n"
        "    respond: {status: 504, body: '<html>gateway timeout</html>',"
        " headers: {Content-Type: text/html}}\n"
    )
    status, headers, body = api.raw("GET", "/api/asset")
    assert (status, headers["Content-Type"], body) == (
        504,
        "text/html",
        b"<html>gateway timeout</html>",
    )


def test_slow_network_delays_responses_in_real_time_even_on_the_manual_clock(
    api: Client,
) -> None:
    """Shipped `slow-network`; effect `delay` (wall-clock, the server's clock is manual)."""
    api.use({"name": "slow-network"})
    began = time.monotonic()
    assert api.call("GET", "/api/asset")[0] == 200
    assert time.monotonic() - began >= 0.3
    # The control plane is never faulted, so a test can always undo a scenario.
    began = time.monotonic()
    assert api.call("GET", "/_emulator/clock")[0] == 200
    assert time.monotonic() - began < 0.3
    # A client with a shorter timeout than the delay times out, as on a slow network.
    conn = http.client.HTTPConnection(urlsplit(api.server.root).netloc, timeout=0.1)
    with pytest.raises(TimeoutError):
        conn.request("GET", "/api/asset", headers={"Authorization": f"Bearer {api.key}"})
        conn.getresponse()
    conn.close()


def test_drop_connection_resets_at_once(api: Client) -> None:
    api.use(
        {"faults": [{"match": {"method": "GET", "path": "/api/task"}, "drop_connection": True}]}
    )
    conn = http.client.HTTPConnection(urlsplit(api.server.root).netloc, timeout=10)
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        conn.request("GET", "/api/task", headers={"Authorization": f"Bearer {api.key}"})
        conn.getresponse()
    conn.close()
    assert api.call("GET", "/api/asset")[0] == 200  # other routes answer


def test_upload_interrupted_resets_the_first_upload_and_a_retry_succeeds(api: Client) -> None:
    """Shipped `upload-interrupted`: drop_connection after_bytes, match key times."""
    api.use({"name": "upload-interrupted"})
    status, created = api.call("POST", "/api/asset/request-upload", {"name": "cut.mp4"})
    assert status == 200
    url = urlsplit(created["url"])
    data = SAMPLE_MP4.read_bytes()
    assert len(data) > 16384
    conn = http.client.HTTPConnection(url.netloc, timeout=10)
    with pytest.raises((ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        conn.request("PUT", f"{url.path}?{url.query}", body=data)
        conn.getresponse()
    conn.close()
    asset_id = created["asset"]["id"]
    assert api.asset(asset_id)["status"]["phase"] == "uploading"  # half an upload is nothing
    status, _, _ = api.raw("PUT", created["url"], data, key=False)  # times: 1
    assert status == 200
    api.advance(10)
    asset = api.asset(asset_id)
    assert asset["status"]["phase"] == "ready"
    assert asset["size"] == len(data)


def test_upload_interrupted_cuts_a_tus_patch_too(api: Client) -> None:
    """The uploader's scenario applies to tus requests, which carry no API key."""
    api.use({"name": "upload-interrupted"})
    status, created = api.call("POST", "/api/asset/request-upload", {"name": "tus.mp4"})
    assert status == 200
    data = SAMPLE_MP4.read_bytes()
    tus = {"Tus-Resumable": "1.0.0"}
    endpoint = urlsplit(created["tusEndpoint"])
    conn = http.client.HTTPConnection(endpoint.netloc, timeout=10)
    conn.request(
        "POST",
        f"{endpoint.path}?{endpoint.query}",
        headers={**tus, "Upload-Length": str(len(data))},
    )
    made = conn.getresponse()
    made.read()
    assert made.status == 201
    location = urlsplit(made.headers["Location"]).path
    patch = {**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    with pytest.raises((ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        conn.request("PATCH", location, body=data, headers=patch)
        conn.getresponse()
    conn.close()
    conn = http.client.HTTPConnection(endpoint.netloc, timeout=10)
    conn.request("HEAD", location, headers=tus)
    head = conn.getresponse()
    head.read()
    assert (head.status, head.headers["Upload-Offset"]) == (200, "0")  # nothing was stored
    conn.request("PATCH", location, body=data, headers=patch)  # times: 1, so this one passes
    done = conn.getresponse()
    done.read()
    assert (done.status, done.headers["Upload-Offset"]) == (204, str(len(data)))
    conn.close()
    api.advance(10)
    assert api.asset(created["asset"]["id"])["status"]["phase"] == "ready"


# -- processing and import effects ----------------------------------------------------


def test_transcode_fails_at_half_with_the_same_error_on_task_and_asset(api: Client) -> None:
    """Shipped `transcode-fails`: processing fail_at_progress + error."""
    api.use({"name": "transcode-fails"})
    asset_id, task_id = api.upload("clip.mp4")
    api.advance(1.5)  # queue 0.5 s, then 0.25 of 3 s
    assert api.asset(asset_id)["status"]["progress"] == 0.25
    api.advance(60)
    error = "Failed to transcode video: invalid codec"
    asset, task = api.asset(asset_id), api.task(task_id)
    assert asset["status"]["phase"] == "failed"
    assert asset["status"]["errorMessage"] == error
    assert task["status"]["phase"] == "failed"
    assert task["status"]["errorMessage"] == error
    assert task["status"]["retries"] == 0
    assert "videoSpec" not in asset


def test_asset_name_glob_picks_which_assets_fail(api: Client) -> None:
    api.use(
        {
            "faults": [
                {
                    "match": {"asset_name": "fail-*"},
                    "processing": {"fail_at_progress": 0.5, "error": "bad frames"},
                }
            ]
        }
    )
    failing, _ = api.upload("fail-1.mp4")
    fine, _ = api.upload("good-1.mp4")
    api.advance(10)
    assert api.asset(failing)["status"] == {
        "phase": "failed",
        "updatedAt": api.asset(failing)["status"]["updatedAt"],
        "errorMessage": "bad frames",
    }
    assert api.asset(fine)["status"]["phase"] == "ready"


def test_fail_times_goes_through_studios_task_retries_then_succeeds(api: Client) -> None:
    api.use(
        {
            "faults": [
                {
                    "match": {"asset_name": "flaky-*"},
                    "processing": {"fail_times": 1, "error": "transient error"},
                }
            ]
        }
    )
    asset_id, task_id = api.upload("flaky-1.mp4")
    api.advance(0.5)  # the first run fails as it starts
    task = api.task(task_id)["status"]
    assert (task["phase"], task["retries"], task["errorMessage"]) == (
        "waiting",
        1,
        "transient error",
    )
    assert api.asset(asset_id)["status"]["phase"] == "processing"  # the asset is not failed
    api.advance(29)  # re-queued after 30 s: still waiting
    assert api.task(task_id)["status"]["phase"] == "waiting"
    api.advance(10)
    task = api.task(task_id)["status"]
    # scheduler.ts processTaskEvent writes a whole new status: no retries, no errorMessage.
    assert set(task) == {"phase", "updatedAt"} and task["phase"] == "completed"
    assert api.asset(asset_id)["status"]["phase"] == "ready"


def test_fail_times_beyond_two_retries_fails_for_good(api: Client) -> None:
    api.use({"faults": [{"processing": {"fail_times": 3, "error": "worker lost"}}]})
    asset_id, task_id = api.upload("doomed.mp4")
    api.advance(60)  # retry 1 after 30 s; the final retry waits 3 min
    assert api.task(task_id)["status"]["retries"] == 2
    assert api.task(task_id)["status"]["phase"] == "waiting"
    api.advance(200)
    task = api.task(task_id)["status"]
    assert (task["phase"], task["retries"], task["errorMessage"]) == ("failed", 2, "worker lost")
    asset = api.asset(asset_id)["status"]
    assert (asset["phase"], asset["errorMessage"]) == ("failed", "worker lost")


def test_stall_stops_progress_and_never_completes(api: Client) -> None:
    api.use(
        {"faults": [{"match": {"asset_name": "stuck-*"}, "processing": {"stall_at_progress": 0.3}}]}
    )
    asset_id, task_id = api.upload("stuck-1.mp4")
    api.advance(3600)
    asset, task = api.asset(asset_id)["status"], api.task(task_id)["status"]
    assert (asset["phase"], asset["progress"]) == ("processing", 0.3)
    assert (task["phase"], task["progress"]) == ("running", 0.3)


def test_import_fails_with_the_scenarios_error_without_downloading(api: Client) -> None:
    """Shipped `import-fails`."""
    api.use({"name": "import-fails"})
    body = {"name": "remote", "url": "http://127.0.0.1:9/video.mp4"}
    status, created = api.call("POST", "/api/asset/upload/url", body)
    assert status == 201
    api.advance(5)
    error = "failed to download: 404 Not Found"  # not "cannot connect": nothing was fetched
    asset = api.asset(created["asset"]["id"])["status"]
    task = api.task(created["task"]["id"])["status"]
    assert (asset["phase"], asset["errorMessage"]) == ("failed", error)
    assert (task["phase"], task["errorMessage"]) == ("failed", error)


def test_source_url_glob_picks_which_imports_fail(api: Client) -> None:
    api.use({"faults": [{"match": {"source_url": "*.mkv"}, "import": {"error": "gone"}}]})
    mkv = api.call(
        "POST", "/api/asset/upload/url", {"name": "a", "url": "http://127.0.0.1:9/a.mkv"}
    )
    mp4 = api.call(
        "POST", "/api/asset/upload/url", {"name": "b", "url": "http://127.0.0.1:9/b.mp4"}
    )
    api.advance(5)
    assert api.asset(mkv[1]["asset"]["id"])["status"]["errorMessage"] == "gone"
    # The other URL was really fetched, and failed the way a dead port fails.
    assert "cannot connect" in api.asset(mp4[1]["asset"]["id"])["status"]["errorMessage"]


# -- match keys -----------------------------------------------------------------------


def test_method_and_path_globs_select_requests(api: Client) -> None:
    api.use(
        {
            "faults": [
                {"match": {"method": "GET", "path": "/api/task*"}, "respond": {"status": 500}},
            ]
        }
    )
    assert api.call("GET", "/api/task")[0] == 500
    assert api.call("GET", "/api/task/0b5e8fd4-0000-4000-8000-000000000000")[0] == 500
    assert api.call("GET", "/api/task/")[0] == 500  # trailing slash, as Studio tolerates
    assert api.call("GET", "/api/asset")[0] == 200
    assert api.call("POST", "/api/asset/request-upload", {"name": "x"})[0] == 200


def test_times_caps_how_often_a_rule_fires(api: Client) -> None:
    api.use({"faults": [{"match": {"path": "/api/asset", "times": 2}, "respond": {"status": 503}}]})
    assert api.statuses("GET", "/api/asset", 4) == [503, 503, 200, 200]
    # A reset of the tenant's data starts its counters afresh; the scenario stays.
    assert api.call("POST", "/_emulator/reset", {})[0] == 200
    assert api.statuses("GET", "/api/asset", 3) == [503, 503, 200]


def test_tenant_key_matches_one_api_key_under_a_global_scenario(api: Client) -> None:
    victim, bystander = api, other(api)
    rule = {"match": {"tenant": victim.key, "path": "/api/*"}, "respond": {"status": 401}}
    shown = victim.use({"name": "tenant-only", "faults": [rule]}, scope="global")
    try:
        assert shown["scope"] == "global"
        assert victim.call("GET", "/api/asset")[0] == 401
        assert bystander.call("GET", "/api/asset")[0] == 200
    finally:
        status, _, _ = victim.raw("DELETE", "/_emulator/scenario?scope=global")
        assert status == 200
    assert victim.call("GET", "/api/asset")[0] == 200


SEEDED = {
    "seed": 7,
    "faults": [{"match": {"path": "/api/asset", "probability": 0.5}, "respond": {"status": 503}}],
}


def test_a_seeded_probability_gives_the_same_statuses_run_after_run(api: Client) -> None:
    runs = []
    for run in range(2):
        client = Client(api.server, f"{api.key}-run{run}")
        client.use(SEEDED)
        runs.append(client.statuses("GET", "/api/asset", 20))
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 503}
    # Putting the scenario in force again starts its draws again.
    api.use(SEEDED)
    assert api.statuses("GET", "/api/asset", 20) == runs[0]
    api.use({**SEEDED, "seed": 8})
    assert api.statuses("GET", "/api/asset", 20) != runs[0]


def test_flaky_api_rate_limits_one_read_in_five_reproducibly(api: Client) -> None:
    seen = []
    for run in range(2):
        client = Client(api.server, f"{api.key}-run{run}")
        client.use({"name": "flaky-api"})
        seen.append(client.statuses("GET", "/api/asset/nope", 30))
    assert seen[0] == seen[1]
    assert set(seen[0]) == {404, 429}
    assert 2 <= seen[0].count(429) <= 12


# -- shipped timing profiles ----------------------------------------------------------


def ready_after_ms(api: Client, scenario: str, *, advance: float) -> tuple[int, dict[str, Any]]:
    """Upload the sample under `scenario`; ms from upload to ready, and the asset."""
    api.use({"name": scenario})
    asset_id, _ = api.upload(f"{scenario}.mp4")
    arrived = api.asset(asset_id)["status"]["updatedAt"]
    if advance:
        api.advance(advance)
    asset = api.asset(asset_id)
    assert asset["status"]["phase"] == "ready", asset
    return asset["status"]["updatedAt"] - arrived, asset


@pytest.mark.parametrize(
    ("scenario", "expected_ms"), [("default", 3500), ("instant", 0), ("slow-processing", 150_000)]
)
def test_shipped_timing_profiles(api: Client, scenario: str, expected_ms: int) -> None:
    took, _ = ready_after_ms(api, scenario, advance=expected_ms / 1000 + 1)
    assert took == expected_ms


def test_instant_is_ready_before_any_time_passes(api: Client) -> None:
    took, _ = ready_after_ms(api, "instant", advance=0)
    assert took == 0


def test_realistic_scales_processing_with_the_media_duration(api: Client) -> None:
    took, asset = ready_after_ms(api, "realistic", advance=60)
    duration = asset["videoSpec"]["duration"]
    assert 1.5 < duration < 3
    assert took == 15_000 + round(1000 * duration)


# -- runtime control ------------------------------------------------------------------


def test_get_put_delete_scenario_per_tenant(api: Client) -> None:
    status, shown = api.call("GET", "/_emulator/scenario")
    assert (status, shown["name"], shown["scope"]) == (200, "default", "default")
    shown = api.use("transcode-fails")  # a bare shipped name as the body
    assert (shown["name"], shown["scope"]) == ("transcode-fails", "tenant")
    assert shown["definition"]["faults"][0]["processing"]["fail_at_progress"] == 0.5
    assert api.call("GET", "/_emulator/scenario")[1]["name"] == "transcode-fails"
    assert other(api).call("GET", "/_emulator/scenario")[1]["name"] == "default"
    status, _, body = api.raw("DELETE", "/_emulator/scenario")
    assert (status, json.loads(body)["scope"]) == (200, "default")


def test_put_accepts_yaml_and_tab_indented_json(api: Client) -> None:
    shown = api.use("name: mine\ntimeline:\n  queue: 1s\n")
    assert (shown["name"], shown["definition"]["timeline"]) == ("mine", {"queue": "1s"})
    shown = api.use('{\n\t"name": "tabs",\n\t"timeline": {"processing": "2s"}\n}')
    assert shown["name"] == "tabs"


def test_put_refuses_a_bad_scenario_with_every_message(api: Client) -> None:
    body = b"name: bad\ntimeline:\n  queue: 5\nfaults:\n  - match: {probabilty: 0.5}\n"
    status, _, raw = api.raw("PUT", "/_emulator/scenario", body)
    assert status == 400
    assert json.loads(raw)["errors"] == [
        "<request body>:3: timeline.queue: 5 is a duration without a unit; write 5ms or 5s",
        f"<request body>:5: faults[0] has no effect: add one of {', '.join(RULE_KEYS[1:])}",
        "<request body>:5: unknown key 'probabilty' in faults[0].match; "
        "did you mean 'probability'?",
    ]
    status, _, raw = api.raw("PUT", "/_emulator/scenario", b'{"name": "transcode-fail"}')
    assert status == 400
    assert "did you mean 'transcode-fails'?" in json.loads(raw)["errors"][0]
    status, _, raw = api.raw("PUT", "/_emulator/scenario", b'{"name": "instant"}', key=False)
    assert status == 400
    assert "?scope=global" in json.loads(raw)["errors"][0]
    assert api.call("GET", "/_emulator/scenario")[1]["name"] == "default"  # unchanged


# -- the server's own scenario, the CLI and the README --------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*emulator_command(), *args], capture_output=True, text=True, timeout=60, check=False
    )


BROKEN = """\
name: broken
timeline:
  queue: 2
faults:
  - match: {path: "/api/[asset", probability: 2}
    respond: {status: 503}
"""


def test_serve_refuses_a_bad_scenario_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    done = run_cli(
        "serve", "--port", "0", "--data-dir", str(tmp_path / "d"), "--scenario", str(bad)
    )
    assert done.returncode == 2
    assert f"{bad}:3: timeline.queue: 2 is a duration without a unit" in done.stderr
    assert f"{bad}:5: faults[0].match.path: bad glob '/api/[asset'" in done.stderr
    assert f"{bad}:5: faults[0].match.probability must be between 0 and 1, got 2" in done.stderr
    assert "API at" not in done.stdout


def test_cli_validate_and_list(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    done = run_cli("scenarios", "validate", str(REPO / "scenarios" / "flaky-api.yaml"), str(bad))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].endswith("flaky-api.yaml: ok (flaky-api, 2 fault rule(s))")
    assert [line.split(": ")[0] for line in lines[1:]] == [f"{bad}:3", f"{bad}:5", f"{bad}:5"]
    assert (
        run_cli(
            "scenarios", "validate", *(str(p) for p in (REPO / "scenarios").glob("*.yaml"))
        ).returncode
        == 0
    )
    listed = run_cli("scenarios", "list")
    assert listed.returncode == 0
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names == SHIPPED
    assert set(SHIPPED) >= {
        "default",
        "instant",
        "realistic",
        "slow-processing",
        "transcode-fails",
        "import-fails",
        "flaky-api",
        "rate-limited",
        "slow-network",
        "upload-interrupted",
    }
    assert "The 2nd and 3rd request-upload answer 503" in listed.stdout


def readme_scenario() -> str:
    """The YAML block of README.md's Scenarios section."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Scenarios", 1)[1].split("\n## ", 1)[0]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_readme_example_runs_as_the_servers_scenario_from_the_env_var(serve: Any, key: str) -> None:
    """The README's worked example, inline in LIVEPEER_EMULATOR_SCENARIO, as a CI container
    passes it."""
    server = serve("--clock", "manual", env={"LIVEPEER_EMULATOR_SCENARIO": readme_scenario()})
    assert "scenario checkout-tests" in server.startup_line
    api = Client(server, key)
    assert api.call("GET", "/_emulator/scenario")[1]["scope"] == "default"
    # What the README says happens:
    assert api.statuses("POST", "/api/asset/request-upload", 2, {"name": "ok"}) == [200, 503]
    asset_id, _ = api.upload("broken-upload.mp4")
    api.advance(5)
    asset = api.asset(asset_id)["status"]
    assert (asset["phase"], asset["errorMessage"]) == (
        "failed",
        "Failed to transcode video: invalid codec",
    )
    fine, _ = api.upload("holiday.mp4")
    api.advance(1)
    assert api.asset(fine)["status"]["phase"] == "ready"
