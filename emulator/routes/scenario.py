"""/_emulator/scenario: see, switch and restore the scenario in force, at runtime.

A bearer key scopes the change to that tenant (one test); `?scope=global` applies it to
everyone (with keys configured, only an admin key may). The body is YAML or JSON:
`{"name": "<shipped>"}`, `{"path": "<file>"}` (a shipped file or one in --scenarios-dir),
or a whole scenario.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from emulator import scenarios
from emulator.errors import BadRequest, ConfigError, Forbidden
from emulator.routes.common import (
    RULES,
    SETTINGS,
    control_scope,
    json_response,
    optional_tenant,
    public,
    read_body,
)
from emulator.scenarios import Scenario
from emulator.scenarios.loading import FileRefused


@public
async def get_scenario(request: web.Request) -> web.Response:
    scenario, scope = request.app[RULES].in_force(optional_tenant(request))
    return json_response(_shown(scenario, scope))


@public
async def put_scenario(request: web.Request) -> web.Response:
    who = _scope(request)
    text = (await read_body(request)).decode("utf-8", errors="replace")
    try:
        # In a thread: a file may be up to 1 MiB of YAML, seconds of pure-Python parsing
        # that must not stall every other request.
        scenario = await asyncio.to_thread(
            scenarios.load_request, text, scenarios_dir=request.app[SETTINGS].scenarios_dir
        )
    except scenarios.ScenarioError as exc:
        # Every problem, each naming its line, rather than the first one only.
        return json_response({"errors": exc.messages}, status=400)
    except FileRefused as exc:
        raise Forbidden(str(exc)) from None
    except ConfigError as exc:
        raise BadRequest(str(exc)) from None
    rules = request.app[RULES]
    rules.use(scenario, who)
    return json_response(_shown(*rules.in_force(optional_tenant(request))))


@public
async def delete_scenario(request: web.Request) -> web.Response:
    rules = request.app[RULES]
    rules.drop(_scope(request))
    return json_response(_shown(*rules.in_force(optional_tenant(request))))


def _scope(request: web.Request) -> str | None:
    """The tenant a change is for; None for everyone (?scope=global)."""
    scope = request.query.get("scope", "tenant")
    if scope not in ("tenant", "global"):
        raise BadRequest(f"scope must be 'tenant' or 'global', not {scope!r}")
    if scope == "tenant" and optional_tenant(request) is None:
        raise BadRequest("send a bearer key to change its tenant's scenario, or ?scope=global")
    return control_scope(request, scope == "global", "changing the global scenario")


def _shown(scenario: Scenario, scope: str) -> dict[str, object]:
    return {
        "name": scenario.name,
        "description": scenario.description,
        "scope": scope,
        "source": scenario.source,
        "definition": scenario.definition,
    }
