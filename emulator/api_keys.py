"""API keys: which tenant a bearer key belongs to, and what a CORS-enabled key may do.

Keys come from two places: the command line (Settings, fixed for the server's life) and
the control plane (`POST /_emulator/api-keys`, stored, kept across restarts, removed with
their tenant). Studio makes keys only from its dashboard (controllers/api-token.js); the
emulator's documents have that file's shape. Every authenticated request looks its key
up, so stored keys are held in memory too.

CORS rules are Studio's (middleware/auth.ts): a key that allows an origin gets that
origin's CORS headers; a key with origins but without `fullAccess` may call only the
routes of `corsApiKeyAccessRules`, from a browser or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from emulator.errors import BadRequest, NotFound, UnprocessableEntity
from emulator.models import Doc, new_id, tenant_project_id, tenant_user_id
from emulator.scheduler import Scheduler
from emulator.settings import DEFAULT_KEY_NAME, ApiKey, Settings, check_origin
from emulator.store import ApiKeyRow, Store
from emulator.validation import Schema

# Studio's api-token `access` (db-schema.yaml), `cors` only: access `rules` (custom
# route lists) are not emulated, so a body with them is refused by the schema.
NEW_API_KEY: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "tenantKey": {"type": "string", "minLength": 1},
        "access": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "cors": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "fullAccess": {"type": "boolean"},
                        "allowedOrigins": {"type": "array", "items": {"type": "string"}},
                    },
                }
            },
        },
    },
}

# Studio's corsApiKeyAccessRules (middleware/auth.ts), paths without the /api prefix.
# Most of these routes are not emulated (streams, data): they answer 404 once allowed.
CORS_KEY_RULES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("get",), ("/stream/:id/sessions", "/stream/sessions/:parentId", "/session/:id")),
    (("get", "patch"), ("/stream/:id", "/multistream/target/:id")),
    (("post",), ("/stream", "/multistream/target")),
    (("get",), ("/task/:id",)),
    (("get", "patch"), ("/asset/:id",)),
    (("post",), ("/asset/upload/url", "/asset/request-upload", "/asset/:id/export")),
    (
        ("get",),
        ("/data/views/:id/total", "/data/views/query/total/:id", "/data/views/query/creator"),
    ),
    (("post",), ("/experiment/-/attestation",)),
)
RESTRICTED_MESSAGE = "access forbidden for CORS-enabled API key with restricted access"


def _rule_table() -> dict[tuple[str, ...], tuple[str, ...]]:
    table: dict[tuple[str, ...], tuple[str, ...]] = {}
    for methods, resources in CORS_KEY_RULES:
        for resource in resources:
            table[tuple(resource.strip("/").split("/"))] = methods
    return table


_RULES = _rule_table()


def cors_rules_allow(method: str, path: str) -> bool:
    """Studio's AuthPolicy over corsApiKeyAccessRules: the route `path` (without /api)
    matches decides, by its methods. As http-hash, a literal segment wins over a
    `:param` one, so `GET /asset/request-upload` finds the POST-only route and is
    refused. `HEAD` is not `get` there, so it is refused too, as in Studio."""
    parts = tuple(path.strip("/").split("/"))
    methods = _match(parts, tuple(_RULES))
    return methods is not None and method.lower() in methods


def _match(parts: tuple[str, ...], patterns: tuple[tuple[str, ...], ...]) -> tuple[str, ...] | None:
    candidates = [p for p in patterns if len(p) == len(parts)]
    for depth, part in enumerate(parts):
        literal = [p for p in candidates if p[depth] == part]
        candidates = literal or [p for p in candidates if p[depth].startswith(":") and part]
    return _RULES[candidates[0]] if candidates else None


class KeyGrant(NamedTuple):
    """What a bearer key is: its tenant, name, admin power and CORS access."""

    key: str
    tenant: str
    name: str = DEFAULT_KEY_NAME
    allowed_origins: tuple[str, ...] = ()
    full_access: bool = False
    admin: bool = False

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.allowed_origins or origin in self.allowed_origins

    @property
    def restricted(self) -> bool:
        """Studio's isRestrictedCors: origins given, and no fullAccess."""
        return bool(self.allowed_origins) and not self.full_access


class ApiKeys:
    """Every key the server accepts. Without configured keys, any bearer token is a key
    whose tenant is itself (the default, for local use), and stored keys join theirs."""

    def __init__(
        self, configured: Mapping[str, ApiKey], admin_keys: frozenset[str], *, open_keys: bool
    ) -> None:
        self._configured = {
            key: KeyGrant(key, key, spec.name, spec.origins, spec.full_access, key in admin_keys)
            for key, spec in configured.items()
        }
        # No --api-key (admin keys alone lock only the control plane): any token is a key.
        self._open = open_keys
        self._stored: dict[str, tuple[KeyGrant, ApiKeyRow]] = {}
        self._store: Store | None = None
        self._scheduler: Scheduler | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        return cls(
            settings.configured_keys,
            frozenset(settings.admin_keys),
            open_keys=not settings.api_keys,
        )

    async def start(self, store: Store, scheduler: Scheduler) -> None:
        self._store, self._scheduler = store, scheduler
        self._stored = {row.doc["id"]: (_grant(row), row) for row in await store.all_api_keys()}

    def grant(self, key: str) -> KeyGrant | None:
        """The key's grant, or None for a key this server does not accept."""
        if key in self._configured:
            return self._configured[key]
        if key in self._stored:
            return self._stored[key][0]
        return KeyGrant(key, key) if self._open else None

    # -- the control plane -----------------------------------------------------------------

    def new_key(self, caller: str | None, body: Doc) -> tuple[str, Doc]:
        """(tenant, Studio's api-token document) of a new key in `tenantKey`'s tenant
        (the caller's without one), not saved yet: the route first checks that the
        caller may act on that tenant."""
        tenant_key = body.get("tenantKey") or caller
        if tenant_key is None:
            raise BadRequest(
                "send tenantKey (a key whose tenant the new key joins), or a bearer key"
            )
        owner = self.grant(tenant_key)
        if owner is None:
            raise UnprocessableEntity(f"tenantKey {tenant_key} is not a key of this server")
        access: Doc = {}
        cors = (body.get("access") or {}).get("cors")
        if cors is not None:
            try:
                origins = [check_origin(origin) for origin in cors.get("allowedOrigins", [])]
            except ValueError as exc:
                raise UnprocessableEntity(f"access.cors.allowedOrigins: {exc}") from None
            access = {"cors": {**cors, "allowedOrigins": origins}}
        return owner.tenant, self._document(owner.tenant, body.get("name"), access)

    def _document(self, tenant: str, name: str | None, access: Doc) -> Doc:
        assert self._scheduler is not None
        doc: Doc = {
            "id": new_id(),
            "kind": "api-token",
            "userId": tenant_user_id(tenant),
            "projectId": tenant_project_id(tenant),
            "name": name or DEFAULT_KEY_NAME,
            "createdAt": self._scheduler.now_ms(tenant),
        }
        if access:
            doc["access"] = access
        return doc

    async def save(self, tenant: str, doc: Doc) -> None:
        assert self._store is not None
        row = ApiKeyRow(tenant, doc)
        await self._store.put_api_key(row)
        self._stored[doc["id"]] = (_grant(row), row)

    async def add_key(self, key: str, name: str) -> bool:
        """A seed file's tenant: `key` is accepted from now on, as its own tenant, named
        `name`, and kept across restarts. False (nothing changed) if it is known already."""
        if key in self._configured or key in self._stored:
            return False
        doc = {**self._document(key, name, {}), "id": key}
        await self.save(key, doc)
        return True

    def list_keys(self, tenant: str | None) -> list[Doc]:
        """Keys made through the control plane: one tenant's, or with None everyone's."""
        return [row.doc for _, row in self._stored.values() if tenant in (None, row.tenant)]

    def tenant_of(self, key: str, scope: str | None) -> str:
        """The tenant of a stored key `scope` may see (None: any); else 404."""
        found = self._stored.get(key)
        if found is None or scope not in (None, found[1].tenant):
            raise NotFound("not found")
        return found[1].tenant

    def get(self, key: str, scope: str | None) -> Doc:
        self.tenant_of(key, scope)
        return self._stored[key][1].doc

    async def delete(self, key: str, scope: str | None) -> None:
        assert self._store is not None
        self.tenant_of(key, scope)
        await self._store.delete_api_key(key)
        self._stored.pop(key, None)

    async def reset(self, tenant: str | None) -> None:
        if self._store is None:
            return
        await self._store.reset_api_keys(tenant)
        self._stored = {
            key: found
            for key, found in self._stored.items()
            if tenant is not None and found[1].tenant != tenant
        }


def _grant(row: ApiKeyRow) -> KeyGrant:
    cors = (row.doc.get("access") or {}).get("cors") or {}
    return KeyGrant(
        row.doc["id"],
        row.tenant,
        row.doc.get("name") or DEFAULT_KEY_NAME,
        tuple(cors.get("allowedOrigins") or ()),
        bool(cors.get("fullAccess")),
    )
