"""The route table: every route the upstream schema knows is named by its operationId."""

from __future__ import annotations

from pathlib import Path

from emulator.app import create_app
from emulator.settings import Settings


def test_api_routes_are_named_after_studios_operation_ids(tmp_path: Path) -> None:
    names = set(create_app(Settings(data_dir=tmp_path)).router.named_resources())
    expected = {
        "requestUpload", "uploadAsset", "getAssets", "getAsset", "updateAsset",
        "deleteAsset", "getTasks", "getTask", "getPlaybackInfo", "createWebhook",
        "getWebhooks", "getWebhook", "updateWebhook", "deleteWebhook", "getWebhookLogs",
        "getWebhookLog", "resendWebhook", "createSigningKey", "getSigningKeys",
        "getSigningKey", "updateSigningKey", "deleteSigningKey",
    }  # fmt: skip
    assert expected <= names, expected - names
