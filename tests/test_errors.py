"""Every error path answers Studio's status and `{"errors": [...]}` body."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from emulator.app import create_app
from emulator.settings import Settings
from tests.helpers import create_upload


async def _error(resp) -> tuple[int, list[str]]:
    assert resp.headers["Content-Type"].startswith("application/json")
    return resp.status, (await resp.json())["errors"]


async def test_401_without_a_header(client: TestClient) -> None:
    resp = await client.get("/api/asset")
    assert await _error(resp) == (401, ["request is not authenticated"])
    resp = await client.post("/api/asset/request-upload", json={"name": "x"})
    assert await _error(resp) == (401, ["request is not authenticated"])


async def test_scheme_is_case_insensitive_and_others_are_refused(client: TestClient) -> None:
    resp = await client.get("/api/asset", headers={"Authorization": "bEaReR some-key"})
    assert resp.status == 200
    resp = await client.get("/api/asset", headers={"Authorization": "Token abc"})
    assert await _error(resp) == (401, ["unsupported authorization header scheme: Token"])
    # Not of the form "scheme token": anonymous, as Studio treats it.
    resp = await client.get("/api/asset", headers={"Authorization": "Bearer"})
    assert await _error(resp) == (401, ["request is not authenticated"])


async def test_unknown_key_with_configured_keys(aiohttp_client, tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "d", api_key=("good-key",), clock="manual"))
    client = await aiohttp_client(app)
    resp = await client.get("/api/asset", headers={"Authorization": "Bearer wrong"})
    assert await _error(resp) == (401, ["no token wrong found"])
    # Authentication runs before routing, even on public routes like playback.
    resp = await client.get("/api/playback/x", headers={"Authorization": "Bearer wrong"})
    assert await _error(resp) == (401, ["no token wrong found"])
    ok = await client.get("/api/asset", headers={"Authorization": "Bearer good-key"})
    assert ok.status == 200


async def test_unknown_routes_are_404_not_found(client: TestClient, auth) -> None:
    for method, path in [
        ("GET", "/api/nothing"),
        ("GET", "/api"),
        ("POST", "/api/asset"),
        ("PUT", "/api/asset/abc"),
        ("GET", "/elsewhere"),
    ]:
        resp = await client.request(method, path, headers=auth)
        assert await _error(resp) == (404, ["not found"]), (method, path)
    # No key needed for the catch-all.
    assert await _error(await client.get("/api/nothing")) == (404, ["not found"])
    # Studio's route-order quirk: GET request-upload is read as an asset id.
    resp = await client.get("/api/asset/request-upload", headers=auth)
    assert await _error(resp) == (404, ["Asset not found"])


async def test_unknown_asset_and_task(client: TestClient, auth) -> None:
    resp = await client.get(f"/api/asset/{uuid.uuid4()}", headers=auth)
    assert await _error(resp) == (404, ["Asset not found"])
    resp = await client.get(f"/api/task/{uuid.uuid4()}", headers=auth)
    assert await _error(resp) == (404, ["not found"])
    resp = await client.delete(f"/api/asset/{uuid.uuid4()}", headers=auth)
    assert await _error(resp) == (404, ["Asset not found"])


async def test_other_tenants_objects_answer_as_studio_answers_another_user(
    client: TestClient, auth
) -> None:
    """controllers/asset.ts (GET via checkResourceAccess, DELETE, PATCH) and task.ts GET."""
    created = await create_upload(client, auth)
    intruder = {"Authorization": "Bearer intruder"}
    asset_path = f"/api/asset/{created['asset']['id']}"
    assert await _error(await client.get(asset_path, headers=intruder)) == (404, ["not found"])
    resp = await client.delete(asset_path, headers=intruder)
    assert await _error(resp) == (403, ["users may only delete their own assets"])
    resp = await client.patch(asset_path, json={"name": "x"}, headers=intruder)
    assert await _error(resp) == (404, ["asset not found"])
    resp = await client.get(f"/api/task/{created['task']['id']}", headers=intruder)
    assert await _error(resp) == (403, ["user can only request information on their own tasks"])
    assert await (await client.get("/api/asset", headers=intruder)).json() == []
    # The owner still has it, untouched.
    mine = await client.get(asset_path, headers=auth)
    assert (await mine.json())["status"]["phase"] == "uploading"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {},
            {
                "instancePath": "",
                "schemaPath": "#/required",
                "keyword": "required",
                "params": {"missingProperty": "name"},
                "message": "must have required property 'name'",
            },
        ),
        (
            {"name": "x", "colour": "red"},
            {
                "instancePath": "",
                "schemaPath": "#/additionalProperties",
                "keyword": "additionalProperties",
                "params": {"additionalProperty": "colour"},
                "message": "must NOT have additional properties",
            },
        ),
        (
            {"name": 5},
            {
                "instancePath": "/name",
                "schemaPath": "#/properties/name/type",
                "keyword": "type",
                "params": {"type": "string"},
                "message": "must be string",
            },
        ),
        (
            {"name": "x", "profiles": [{"bitrate": 100}]},
            {
                "instancePath": "/profiles/0/bitrate",
                "schemaPath": "#/properties/profiles/items/properties/bitrate/minimum",
                "keyword": "minimum",
                "params": {"comparison": ">=", "limit": 400},
                "message": "must be >= 400",
            },
        ),
        (
            {"name": "x", "playbackPolicy": {"type": "secret"}},
            {
                "instancePath": "/playbackPolicy/type",
                "schemaPath": "#/properties/playbackPolicy/properties/type/enum",
                "keyword": "enum",
                # Studio's db-schema overlay adds lit_signing_condition to the api-schema's.
                "params": {"allowedValues": ["public", "jwt", "webhook", "lit_signing_condition"]},
                "message": "must be equal to one of the allowed values",
            },
        ),
    ],
)
async def test_422_validation_errors_are_ajv_shaped(client: TestClient, auth, body, error) -> None:
    resp = await client.post("/api/asset/request-upload", json=body, headers=auth)
    status, errors = await _error(resp)
    assert status == 422
    assert len(errors) == 1
    assert json.loads(errors[0]) == error
    assert await (await client.get("/api/asset", headers=auth)).json() == []


async def test_url_import_validation(client: TestClient, auth) -> None:
    resp = await client.post("/api/asset/upload/url", json={"name": "x"}, headers=auth)
    status, errors = await _error(resp)
    assert status == 422 and json.loads(errors[0])["params"] == {"missingProperty": "url"}
    resp = await client.post(
        "/api/asset/upload/url", json={"name": "x", "url": "ftp://h/f"}, headers=auth
    )
    status, errors = await _error(resp)
    assert status == 422 and json.loads(errors[0])["keyword"] == "pattern"


async def test_400_malformed_json(client: TestClient, auth) -> None:
    headers = {**auth, "Content-Type": "application/json"}
    resp = await client.post("/api/asset/request-upload", data=b'{"name": }', headers=headers)
    assert await _error(resp) == (400, ["Unexpected token } in JSON at position 9"])
    resp = await client.post("/api/asset/request-upload", data=b'{"name": "x"', headers=headers)
    assert await _error(resp) == (400, ["Unexpected end of JSON input"])


async def test_413_json_over_100kb(client: TestClient, auth) -> None:
    big = json.dumps({"name": "x" * 110_000}).encode()
    headers = {**auth, "Content-Type": "application/json"}
    resp = await client.post("/api/asset/request-upload", data=big, headers=headers)
    assert await _error(resp) == (413, ["request entity too large"])

    async def chunks():
        for i in range(0, len(big), 8192):  # no Content-Length: the limit still holds
            yield big[i : i + 8192]

    resp = await client.post("/api/asset/request-upload", data=chunks(), headers=headers)
    assert await _error(resp) == (413, ["request entity too large"])


async def test_creation_checks_beyond_the_schema(client: TestClient, auth) -> None:
    resp = await client.post(
        "/api/asset/request-upload", json={"name": "x", "profiles": []}, headers=auth
    )
    assert await _error(resp) == (400, ["assets must have at least one profile"])
    resp = await client.post(
        "/api/asset/request-upload",
        json={"name": "x", "encryption": {"encryptedKey": "abcd"}},
        headers=auth,
    )
    assert await _error(resp) == (400, ["a playbackPolicy is required when using encryption"])


async def test_trailing_slash_is_tolerated(client: TestClient, auth) -> None:
    resp = await client.post("/api/asset/request-upload/", json={"name": "x"}, headers=auth)
    assert resp.status == 200
    assert (await client.get("/api/asset/", headers=auth)).status == 200


async def test_odd_inputs_get_answers_not_500s(client: TestClient, auth) -> None:
    headers = {**auth, "Content-Type": "application/json"}
    # JSON.parse accepts lone surrogates, so Studio stores them; so do we.
    resp = await client.post(
        "/api/asset/request-upload", data=b'{"name": "\\ud800 odd"}', headers=headers
    )
    assert resp.status == 200
    asset_id = (await resp.json())["asset"]["id"]
    got = await client.get(f"/api/asset/{asset_id}", headers=auth)
    assert (await got.json())["name"] == "\ud800 odd"
    resp = await client.post("/_emulator/clock/advance", json={"seconds": 1e308}, headers=auth)
    assert resp.status == 422
    resp = await client.get("/api/asset", headers={"Authorization": "Basic !!!"})
    assert resp.status == 401
