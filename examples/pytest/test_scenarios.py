"""Scenarios per test: a shipped one by marker, an inline one, and what the journal saw."""

from pathlib import Path

import pytest

VIDEO = Path(__file__).resolve().parents[2] / "fixtures" / "sample.mp4"


@pytest.mark.livepeer_scenario("transcode-fails")
def test_processing_failure_reaches_the_client(livepeer_emulator):
    asset = livepeer_emulator.upload(VIDEO)
    failed = livepeer_emulator.wait_for_asset(asset["id"], phase="failed")
    assert failed["status"]["errorMessage"] == "Failed to transcode video: invalid codec"


def test_default_scenario_for_the_test_next_door(livepeer_emulator):
    asset = livepeer_emulator.upload(VIDEO)
    assert livepeer_emulator.wait_for_asset(asset["id"])["status"]["phase"] == "ready"


def test_first_request_upload_is_refused_then_retried(livepeer_emulator):
    livepeer_emulator.use_scenario(
        {
            "name": "one-503",
            "faults": [
                {
                    "match": {"method": "POST", "path": "/api/asset/request-upload", "nth": 1},
                    "respond": {"status": 503},
                }
            ],
        }
    )
    first, _ = livepeer_emulator.request("POST", "/api/asset/request-upload", {"name": "x"})
    second, _ = livepeer_emulator.request("POST", "/api/asset/request-upload", {"name": "x"})
    assert (first, second) == (503, 200)
    calls = livepeer_emulator.requests(method="POST")
    assert [(c["status"], c["faultInjected"]) for c in calls] == [(503, True), (200, False)]


def test_scenario_from_a_yaml_file(livepeer_emulator, tmp_path):
    scenario = tmp_path / "slow.yaml"
    scenario.write_text("name: slow\ntimeline:\n  queue: 10s\n  processing: 20s\n")
    livepeer_emulator.use_scenario(scenario)
    asset = livepeer_emulator.upload(VIDEO)
    livepeer_emulator.advance(29)
    assert livepeer_emulator.get_asset(asset["id"])["status"]["phase"] == "processing"
    livepeer_emulator.advance(1)
    assert livepeer_emulator.get_asset(asset["id"])["status"]["phase"] == "ready"
