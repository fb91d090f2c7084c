"""End to end: a real `livepeer-emulator serve` driven by the official Python SDK."""

from __future__ import annotations

import functools
import http.server
import threading
import urllib.request
from collections.abc import Iterator

import pytest
from livepeer import Livepeer
from livepeer.models import errors

from tests.conftest import FIXTURES, NOT_MEDIA, SAMPLE_MP4

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.serving import ServerProcess

    proc = ServerProcess(tmp_path_factory.mktemp("e2e") / "data", "--clock", "manual").start()
    yield proc
    proc.stop()


@pytest.fixture
def sdk(server, key: str) -> Livepeer:
    return Livepeer(api_key=key, server_url=server.api_url)


@pytest.fixture(scope="module")
def file_server() -> Iterator[str]:
    """A plain local HTTP server publishing fixtures/, for URL imports."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(FIXTURES))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def put_file(url: str, data: bytes) -> int:
    req = urllib.request.Request(url, data=data, method="PUT")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return int(resp.status)


def test_upload_ready_list_update_playback_delete(server, sdk: Livepeer, key: str) -> None:
    created = sdk.asset.create(request={"name": "e2e.mp4"}).data
    assert created is not None
    assert created.asset.status.phase.value == "uploading"
    assert created.url.startswith(server.root + "/api/asset/upload/direct?token=")
    assert put_file(created.url, SAMPLE_MP4.read_bytes()) == 200

    asset = sdk.asset.get(asset_id=created.asset.id).asset
    assert asset.status.phase.value == "waiting"
    server.advance(10, key)
    asset = sdk.asset.get(asset_id=created.asset.id).asset
    assert asset.status.phase.value == "ready"
    assert asset.video_spec.duration == 2.0
    assert asset.size == SAMPLE_MP4.stat().st_size
    assert asset.playback_url and asset.download_url

    # Tracks (width/height) only come with ?details, which the SDK cannot send.
    status, detailed = server.request("GET", f"/api/asset/{asset.id}?details=1", key=key)
    assert status == 200
    video = detailed["videoSpec"]["tracks"][0]
    assert (video["width"], video["height"]) == (320, 240)

    listed = sdk.asset.get_all().data
    assert [a.id for a in listed] == [asset.id]

    renamed = sdk.asset.update(asset_id=asset.id, asset_patch_payload={"name": "renamed"}).asset
    assert renamed.name == "renamed"
    assert sdk.asset.get(asset_id=asset.id).asset.name == "renamed"

    task = sdk.task.get(task_id=created.task.id).task
    assert task.status.phase.value == "completed"
    assert task.output.upload.asset_spec.video_spec.tracks[0].width == 320

    info = sdk.playback.get(id=asset.playback_id).playback_info
    assert info.type.value == "vod"
    assert [s.hrn.value for s in info.meta.source] == ["MP4", "HLS (TS)", "Thumbnails"]
    assert info.meta.source[0].url.endswith(f"/hls/{asset.playback_id}/static240p0.mp4")
    assert info.meta.source[1].url == asset.playback_url
    with urllib.request.urlopen(info.meta.source[0].url, timeout=30) as resp:
        assert resp.headers["Content-Type"] == "video/mp4"
        assert resp.read()[4:8] == b"ftyp"
    with urllib.request.urlopen(asset.download_url, timeout=30) as resp:
        assert resp.read() == SAMPLE_MP4.read_bytes()  # the uploaded file itself

    deleted = sdk.asset.delete(asset_id=asset.id)
    assert deleted.http_meta.response.status_code == 204
    with pytest.raises(errors.SDKError) as gone:
        sdk.asset.get(asset_id=asset.id)
    assert gone.value.status_code == 404
    assert '"Asset not found"' in gone.value.body
    assert sdk.asset.get_all().data == []


def test_import_by_url_from_a_local_file_server(
    server, sdk: Livepeer, key: str, file_server: str
) -> None:
    url = f"{file_server}/sample.mp4"
    resp = sdk.asset.create_via_url(request={"name": "imported", "url": url})
    assert resp.http_meta.response.status_code == 201
    body = resp.two_hundred_and_one_application_json_data
    assert body.asset.status.phase.value == "waiting"
    again = sdk.asset.create_via_url(request={"name": "imported", "url": url})
    assert again.http_meta.response.status_code == 200
    assert again.two_hundred_application_json_data.asset.id == body.asset.id
    server.advance(10, key)
    asset = sdk.asset.get(asset_id=body.asset.id).asset
    assert asset.status.phase.value == "ready"
    assert asset.video_spec.duration == 2.0
    assert sdk.task.get(task_id=body.task.id).task.status.phase.value == "completed"


def test_non_media_upload_fails_with_an_error_message(server, sdk: Livepeer, key: str) -> None:
    created = sdk.asset.create(request={"name": "notes.txt"}).data
    put_file(created.url, NOT_MEDIA.read_bytes())
    server.advance(10, key)
    asset = sdk.asset.get(asset_id=created.asset.id).asset
    assert asset.status.phase.value == "failed"
    assert asset.status.error_message.startswith("Failed to probe file:")
    task = sdk.task.get(task_id=created.task.id).task
    assert task.status.phase.value == "failed"


def test_sdk_errors_carry_studio_bodies(server, sdk: Livepeer) -> None:
    with pytest.raises(errors.SDKError) as invalid:
        sdk.asset.create(request={"name": "x", "profiles": [{"bitrate": 1}]})
    assert invalid.value.status_code == 422
    assert "must be >= 400" in invalid.value.body
    assert server.request("GET", "/api/asset") == (
        401,
        {"errors": ["request is not authenticated"]},
    )
