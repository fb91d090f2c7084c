"""schemathesis over the upstream Studio OpenAPI schema, against a real `serve` subprocess.

Only the operations the emulator implements are probed: those whose method and path are
in emulator.app.ROUTES. Each generated request (positive and negative data, schema
examples, boundary values) is sent twice: once as generated (random bearer token, random
ids: auth and lookups) and once as the fuzz tenant with the path ids of objects that exist
(so PATCH/PUT/DELETE bodies reach the code that stores them). What must hold for every
answer: no 5xx, errors are JSON `{"errors": [str, ...]}`, 2xx bodies are JSON that
JSON.parse accepts (no bare NaN), and the server logs no error. A failure prints the curl
command that reproduces it and the server's traceback line.

Bounded: MAX_EXAMPLES generated cases per operation (plus the schema's examples and the
boundary cases), derandomized, so every run sends the same requests.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error

from emulator.app import ROUTES
from fuzz.conftest import (
    REQUEST_TIMEOUT,
    SCHEMA_PATH,
    SENT,
    Server,
    confine_urls,
    log_errors,
    studio_problems,
)

MAX_EXAMPLES = int(os.environ.get("FUZZ_SCHEMA_EXAMPLES", "50"))
KEY = "fuzz-schema-tenant"


def _load_upstream() -> dict[str, Any]:
    path = Path(os.environ.get("LIVEPEER_STUDIO_SCHEMA", SCHEMA_PATH))
    if not path.is_file():
        pytest.fail(
            f"upstream Studio schema not found at {path}: `make fuzz` needs shared/ beside the"
            " repo (shared/reference/livepeer-studio-api-schema.yaml) or LIVEPEER_STUDIO_SCHEMA"
            " set to the file. It is never copied into the repo.",
            pytrace=False,
        )
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    _repair_descriptions(doc)
    # The schema names Studio's server; aim it at a closed loopback port so that a request
    # sent without our base_url could never leave the machine.
    doc["servers"] = [{"url": "http://127.0.0.1:9/api"}]
    return doc


def _repair_descriptions(node: Any) -> None:
    """The upstream schema has `description: {$ref: …/description}` in a few places, which
    is not JSON Schema and makes schemathesis refuse the asset upload operations. Replace
    those with plain text, in memory only."""
    if isinstance(node, dict):
        for key, value in node.items():
            if (
                key == "description"
                and isinstance(value, dict)
                and list(value) == ["$ref"]
                and str(value["$ref"]).endswith("/description")
            ):
                node[key] = "(description)"
            else:
                _repair_descriptions(value)
    elif isinstance(node, list):
        for item in node:
            _repair_descriptions(item)


def _template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


IMPLEMENTED = {
    (method, _template(path.removeprefix("/api")))
    for method, path, _ in ROUTES
    if path.startswith("/api/")
}


def _implemented(ctx: Any) -> bool:
    return (ctx.operation.method.upper(), _template(ctx.operation.path)) in IMPLEMENTED


schema = schemathesis.openapi.from_dict(_load_upstream()).include(_implemented)


# -- objects that exist, for the second send -----------------------------------------------


class Tenant:
    """The fuzz tenant's objects, made on first use and remade when a DELETE took them."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.ids: dict[str, str] = {}

    def _asset(self) -> dict[str, Any]:
        made = self.server.json("POST", "/api/asset/request-upload", key=KEY, body={"name": "a"})
        asset: dict[str, Any] = made["asset"]
        asset["taskId"] = made["task"]["id"]
        return asset

    def _webhook(self) -> str:
        body = {"name": "w", "url": "http://127.0.0.1:9/hook", "events": ["asset.created"]}
        return str(self.server.json("POST", "/api/webhook", key=KEY, body=body)["id"])

    def ensure(self) -> dict[str, str]:
        if not self.ids:
            asset = self._asset()
            self.ids = {
                "assetId": asset["id"],
                "playbackId": asset["playbackId"],
                "taskId": asset["taskId"],
                "webhookId": self._webhook(),
            }
            # An attempt to the closed port makes a log entry for the log routes.
            self._asset()
            logs = self.server.json("GET", f"/api/webhook/{self.ids['webhookId']}/log", key=KEY)
            self.ids["logId"] = logs[0]["id"] if logs else "no-log"
        return self.ids

    def path_ids(self, path: str, method: str) -> dict[str, str]:
        ids = dict(self.ensure())
        if method == "DELETE":  # a fresh object each time, so the shared ones stay
            if path.startswith("/asset/"):
                ids["assetId"] = self._asset()["id"]
            else:
                ids["webhookId"] = self._webhook()
        if path.startswith("/playback/"):
            return {"id": ids["playbackId"]}
        if path.startswith("/webhook/"):
            return {"id": ids["webhookId"], "logId": ids["logId"]}
        return {"assetId": ids["assetId"], "taskId": ids["taskId"]}


@pytest.fixture(scope="module")
def tenant(server: Server) -> Tenant:
    return Tenant(server)


# -- the check -----------------------------------------------------------------------------


def make_check(server: Server) -> Any:
    def studio_shape(ctx: Any, response: Any, case: Any) -> None:
        """Studio-shaped answer, and nothing in the server log."""
        problems = studio_problems(response.status_code, response.headers, response.content)
        errors = log_errors(server.log.new())
        if errors:
            problems.append("server logged (since the previous check): " + "\n    ".join(errors))
        if problems:
            raise AssertionError("\n".join(problems))

    return studio_shape


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # No shrinking: a failing case is already printed as a curl command, and shrinking
    # every failure would make the run's time unbounded.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_upstream_schema(case: Any, server: Server, tenant: Tenant) -> None:
    check = make_check(server)
    checks = [not_a_server_error, check]
    if isinstance(case.body, (dict, list)):
        case.body = confine_urls(case.body)
    response = case.call(base_url=server.api, timeout=REQUEST_TIMEOUT)
    SENT[case.operation.label] += 1
    case.validate_response(response, checks=checks)

    mine = case.derive()
    mine.headers["Authorization"] = f"Bearer {KEY}"
    if mine.path_parameters:
        known = tenant.path_ids(case.operation.path, case.method.upper())
        mine.path_parameters = {k: known.get(k, v) for k, v in mine.path_parameters.items()}
    response = mine.call(base_url=server.api, timeout=REQUEST_TIMEOUT)
    SENT[case.operation.label] += 1
    mine.validate_response(response, checks=checks)


def test_server_still_healthy(server: Server) -> None:
    """After everything above: the process is up and answers its health check."""
    assert server.healthy(), server.proc.stderr()[-3000:]
