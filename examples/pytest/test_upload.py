"""Upload a video with the official SDK, let it process without sleeping, check the calls."""

import urllib.request
from pathlib import Path

VIDEO = Path(__file__).resolve().parents[2] / "fixtures" / "sample.mp4"  # any short video


def test_uploaded_video_becomes_ready(livepeer_emulator):
    lp = livepeer_emulator.sdk()  # livepeer.Livepeer for a fresh tenant of this test
    upload = lp.asset.create(request={"name": "intro"}).data
    put = urllib.request.Request(upload.url, data=VIDEO.read_bytes(), method="PUT")
    urllib.request.urlopen(put)

    asset = livepeer_emulator.wait_for_asset(upload.asset.id)  # moves the clock, no sleep
    assert asset["videoSpec"]["duration"] == 2.0
    assert lp.asset.get(asset_id=upload.asset.id).asset.status.phase.value == "ready"

    calls = livepeer_emulator.requests(path="/api/asset/*")  # this test's calls only
    assert [(c["method"], c["status"]) for c in calls[:2]] == [("POST", 200), ("PUT", 200)]
