"""Seeded state: `serve --seed FILE` loads tenants, assets, webhooks and signing keys at
start (the format is in the README's "Seeded state").

Reading is the scenario reader's machinery (emulator/scenarios/nodes.py): every problem
is collected with its line and the file is refused as a whole, before anything is
written. Applying goes through the use cases only (ApiKeys, SigningKeys, Assets, Uploads,
Processing, Webhooks), so a seeded asset is stored, hashed, probed, given its outputs and
walked through its steps exactly as an uploaded one.

Idempotent: every object has an id, the file's or one derived from its tenant and name
(uuid5), and an object whose id exists is left as it is. The same seed on the same data
dir therefore adds nothing the second time, and on a fresh data dir gives the same ids.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from yaml.nodes import Node, SequenceNode

from emulator.api_keys import ApiKeys
from emulator.assets import Assets
from emulator.errors import ApiError, ConfigError
from emulator.events import ALL_EVENTS
from emulator.models import AssetPhase
from emulator.processing import Processing
from emulator.scenarios.loading import is_inline, read_bounded
from emulator.scenarios.nodes import NodeReader, compose
from emulator.scenarios.problems import Problem, ScenarioError
from emulator.settings import DEFAULT_KEY_NAME, ApiKey
from emulator.signing_keys import SigningKeys
from emulator.store import Store
from emulator.timeline import DEFAULT_FAULT_ERROR, ProcessingFault
from emulator.uploads import Uploads
from emulator.webhooks import Webhooks

TOP_KEYS = ("tenants",)
TENANT_KEYS = ("key", "name", "assets", "webhooks", "signing_keys")
ASSET_KEYS = ("name", "id", "playback_id", "file", "url", "phase", "error")
WEBHOOK_KEYS = ("name", "id", "url", "events", "shared_secret")
SIGNING_KEY_KEYS = ("name", "id", "public_key", "private_key")
# The phases a seeded asset can start in. `waiting` and `processing` go on from there
# on the clock, like any asset's; `ready` and `failed` are where they end.
PHASES = ("uploading", "waiting", "processing", "ready", "failed")
# Ids go into URL paths (/api/asset/{id}, /hls/{playbackId}/…): no room for surprises.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PLAYBACK_ID = re.compile(r"^[0-9a-z]{4,64}$")
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_CHUNK = 1024 * 1024


class SeedError(ConfigError):
    """A seed file that cannot be loaded, with every problem found in it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line)
        lines = [str(p) for p in self.problems]
        if len(lines) > 1:
            lines.insert(0, f"{len(lines)} problems in the seed file:")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class SeedAsset:
    line: int
    name: str
    asset_id: str
    playback_id: str
    phase: str
    file: Path | None = None
    url: str | None = None
    error: str | None = None

    @property
    def task_id(self) -> str:
        return _derived(f"task:{self.asset_id}")


@dataclass(frozen=True)
class SeedWebhook:
    line: int
    webhook_id: str
    name: str
    url: str
    events: tuple[str, ...]
    shared_secret: str | None


@dataclass(frozen=True)
class SeedSigningKey:
    line: int
    key_id: str
    name: str
    public_key: str  # base64 of the SPKI PEM, as Studio stores it


@dataclass(frozen=True)
class SeedTenant:
    line: int
    key: str
    name: str
    assets: tuple[SeedAsset, ...] = ()
    webhooks: tuple[SeedWebhook, ...] = ()
    signing_keys: tuple[SeedSigningKey, ...] = ()


@dataclass(frozen=True)
class Seed:
    source: str
    tenants: tuple[SeedTenant, ...] = field(default_factory=tuple)


# -- reading -------------------------------------------------------------------------------


def load(value: str) -> Seed:
    """A seed file by path, or inline YAML/JSON (a value with a newline or starting with
    `{`), whose media paths are then taken from the current directory."""
    if is_inline(value):
        return parse(value, source="<inline seed>", base=Path.cwd())
    path = Path(value)
    if not path.is_file():
        raise SeedError([Problem(value, 0, "no such seed file")])
    try:
        text = read_bounded(path, value)
    except ScenarioError as exc:
        raise SeedError(exc.problems) from None
    return parse(text, source=value, base=path.resolve().parent)


def parse(text: str, *, source: str, base: Path) -> Seed:
    try:
        node = compose(text, source)
    except ScenarioError as exc:
        raise SeedError(exc.problems) from None
    reader = _SeedReader(source, base)
    seed = reader.seed(node)
    if reader.problems:
        raise SeedError(reader.problems)
    return seed


def check_keys(seed: Seed, configured: Mapping[str, ApiKey]) -> None:
    """A tenant whose key the command line configures too must agree on its name."""
    problems = [
        Problem(
            seed.source,
            tenant.line,
            f"key {tenant.key!r} is configured (--api-key/--admin-key) named "
            f"{configured[tenant.key].name!r}, but the seed names it {tenant.name!r}",
        )
        for tenant in seed.tenants
        if tenant.key in configured and configured[tenant.key].name != tenant.name
    ]
    if problems:
        raise SeedError(problems)


def _derived(what: str) -> str:
    """A stable id for an object the file gives no id: the same seed, the same ids."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "livepeer-emulator:seed:" + what))


def _playback_id(asset_id: str) -> str:
    """As models.new_playback_id (the asset id's first 4 characters, then 12 of
    [0-9a-z]), but derived from the asset id rather than drawn."""
    digest = int.from_bytes(hashlib.sha256(asset_id.encode()).digest(), "big")
    tail = ""
    for _ in range(12):
        digest, rest = divmod(digest, 36)
        tail += _BASE36[rest]
    head = "".join(c for c in asset_id.lower() if c in _BASE36)[:4]
    return head + tail


class _SeedReader(NodeReader):
    def __init__(self, source: str, base: Path) -> None:
        super().__init__(source)
        self.base = base
        self.ids: dict[tuple[str, str], int] = {}  # (kind, id) → the line that took it

    def _line(self, node: Node) -> int:
        return node.start_mark.line + 1

    def _unique(self, node: Node, kind: str, value: str) -> None:
        taken = self.ids.setdefault((kind, value), self._line(node))
        if taken != self._line(node):
            self.problem(node, f"{kind} {value!r} is already given on line {taken}")

    def _list(self, node: Node | None, where: str) -> list[Node]:
        if node is None:
            return []
        if not isinstance(node, SequenceNode):
            self.wrong(node, where, "a list")
            return []
        return list(node.value)

    def _optional_id(self, keys: dict[str, Node], key: str, where: str) -> str | None:
        if key not in keys:
            return None
        value = self.text(keys[key], f"{where}: {key}")
        pattern = _PLAYBACK_ID if key == "playback_id" else _ID
        if value is not None and not pattern.match(value):
            shape = (
                "4 to 64 characters of [0-9a-z]"
                if key == "playback_id"
                else "1 to 128 letters, digits, '.', '_' or '-'"
            )
            self.problem(keys[key], f"{where}: {key} {value!r} must be {shape}")
            return None
        return value

    def seed(self, node: Node | None) -> Seed:
        if node is None:
            self.problems.append(Problem(self.source, 1, "empty seed: expected a mapping"))
            return Seed(self.source)
        keys = self.mapping(node, "the seed", TOP_KEYS)
        if keys is None:
            return Seed(self.source)
        tenants: list[SeedTenant] = []
        seen: dict[str, int] = {}
        for tenant_node in self._list(keys.get("tenants"), "tenants"):
            tenant = self.tenant(tenant_node)
            if tenant is None:
                continue
            if tenant.key in seen:
                self.problem(
                    tenant_node,
                    f"tenant key {tenant.key!r} is given on line {seen[tenant.key]} too",
                )
                continue
            seen[tenant.key] = tenant.line
            tenants.append(tenant)
        return Seed(self.source, tuple(tenants))

    def tenant(self, node: Node) -> SeedTenant | None:
        keys = self.mapping(node, "a tenant", TENANT_KEYS)
        if keys is None:
            return None
        if "key" not in keys:
            self.problem(node, "a tenant needs a key (its API key)")
            return None
        key = self.text(keys["key"], "key")
        if key is not None and (not key or any(c.isspace() or c in ",;" for c in key)):
            self.problem(keys["key"], f"key {key!r} must be non-empty, without spaces, ',' or ';'")
            key = None
        name = self.text(keys["name"], "name") if "name" in keys else DEFAULT_KEY_NAME
        if key is None or name is None:
            return None
        assets = [self.asset(n, key) for n in self._list(keys.get("assets"), "assets")]
        hooks = [self.webhook(n, key) for n in self._list(keys.get("webhooks"), "webhooks")]
        signing = [
            self.signing_key(n, key) for n in self._list(keys.get("signing_keys"), "signing_keys")
        ]
        return SeedTenant(
            self._line(node),
            key,
            name or DEFAULT_KEY_NAME,
            tuple(a for a in assets if a is not None),
            tuple(h for h in hooks if h is not None),
            tuple(s for s in signing if s is not None),
        )

    def asset(self, node: Node, tenant: str) -> SeedAsset | None:
        keys = self.mapping(node, "an asset", ASSET_KEYS)
        if keys is None:
            return None
        before = len(self.problems)
        if "name" not in keys:
            self.problem(node, "an asset needs a name")
        name = self.text(keys["name"], "asset name") if "name" in keys else None
        phase = self.choice(keys["phase"], "phase", PHASES) if "phase" in keys else "ready"
        asset_id = self._optional_id(keys, "id", "asset")
        playback_id = self._optional_id(keys, "playback_id", "asset")
        file = url = error = None
        if "file" in keys and "url" in keys:
            self.problem(keys["url"], "give an asset's media as file or url, not both")
        elif "file" in keys:
            text = self.text(keys["file"], "file")
            if text is not None:
                file = self.base / text
                if not file.is_file():
                    self.problem(keys["file"], f"no such media file: {file}")
        elif "url" in keys:
            url = self.text(keys["url"], "url")
            if url is not None and not re.match(r"^https?://[^/\s]+", url):
                self.problem(keys["url"], f"url {url!r} must be http(s)://HOST/…")
        if phase == "uploading" and ("file" in keys or "url" in keys):
            self.problem(node, "an uploading asset has no media yet: leave out file and url")
        elif phase not in (None, "uploading") and "file" not in keys and "url" not in keys:
            self.problem(node, f"a {phase} asset needs its media: a file or a url")
        if "error" in keys:
            error = self.text(keys["error"], "error")
            if phase != "failed":
                self.problem(keys["error"], "error is for phase: failed")
        if len(self.problems) > before or name is None or phase is None:
            return None
        if asset_id is None:
            asset_id = _derived(f"{tenant}:asset:{name}")
            self._unique(node, "asset name (without an id)", f"{tenant}:{name}")
        self._unique(keys.get("id", node), "asset id", asset_id)
        playback_id = playback_id or _playback_id(asset_id)
        self._unique(keys.get("playback_id", node), "playback id", playback_id)
        return SeedAsset(
            self._line(node),
            name,
            asset_id,
            playback_id,
            phase,
            file=file if file is not None else None,
            url=url,
            error=error if phase != "failed" else (error or DEFAULT_FAULT_ERROR),
        )

    def webhook(self, node: Node, tenant: str) -> SeedWebhook | None:
        keys = self.mapping(node, "a webhook", WEBHOOK_KEYS)
        if keys is None:
            return None
        before = len(self.problems)
        for needed in ("name", "url"):
            if needed not in keys:
                self.problem(node, f"a webhook needs a {needed}")
        name = self.text(keys["name"], "webhook name") if "name" in keys else None
        url = self.text(keys["url"], "webhook url") if "url" in keys else None
        if url is not None and not re.match(r"^https?://[^/\s]+", url):
            self.problem(keys["url"], f"url {url!r} must be http(s)://HOST/…")
        events: list[str] = []
        if "events" in keys:
            for event_node in self._list(keys["events"], "events"):
                event = self.choice(event_node, "event", ALL_EVENTS)
                if event is not None:
                    events.append(event)
        else:
            events = list(ALL_EVENTS)
        secret = (
            self.text(keys["shared_secret"], "shared_secret") if "shared_secret" in keys else None
        )
        webhook_id = self._optional_id(keys, "id", "webhook")
        if len(self.problems) > before or name is None or url is None:
            return None
        if webhook_id is None:
            webhook_id = _derived(f"{tenant}:webhook:{name}")
            self._unique(node, "webhook name (without an id)", f"{tenant}:{name}")
        self._unique(keys.get("id", node), "webhook id", webhook_id)
        return SeedWebhook(self._line(node), webhook_id, name, url, tuple(events), secret)

    def signing_key(self, node: Node, tenant: str) -> SeedSigningKey | None:
        keys = self.mapping(node, "a signing key", SIGNING_KEY_KEYS)
        if keys is None:
            return None
        before = len(self.problems)
        name = self.text(keys["name"], "signing key name") if "name" in keys else None
        key_id = self._optional_id(keys, "id", "signing key")
        given = [k for k in ("public_key", "private_key") if k in keys]
        public_key = None
        if len(given) != 1:
            self.problem(
                node,
                "a signing key needs its public_key (base64 of the PEM, as Studio gives "
                "it) or its private_key (the public half is stored), one of them",
            )
        else:
            text = self.text(keys[given[0]], given[0])
            if text is not None:
                public_key, why = _public_key(text, private=given[0] == "private_key")
                if public_key is None:
                    self.problem(keys[given[0]], f"{given[0]}: {why}")
        if len(self.problems) > before or public_key is None:
            return None
        name = name or "Signing Key"
        if key_id is None:
            key_id = _derived(f"{tenant}:signing-key:{public_key}")
        self._unique(keys.get("id", node), "signing key id", key_id)
        return SeedSigningKey(self._line(node), key_id, name, public_key)


def _public_key(text: str, *, private: bool) -> tuple[str | None, str]:
    """(base64 of the SPKI PEM, "") of a P-256 key given as PEM or base64 of PEM, or
    (None, why not)."""
    # Here, not at the top: only a seed with signing keys needs cryptography (tens of ms).
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = text.strip().encode()
    if not pem.startswith(b"-----BEGIN"):
        try:
            pem = base64.b64decode(pem, validate=True)
        except (binascii.Error, ValueError):
            return None, "neither a PEM key nor base64 of one"
    try:
        if private:
            secret = serialization.load_pem_private_key(pem, password=None)
            public = secret.public_key()
        else:
            public = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        return None, f"not a readable PEM key ({exc})"
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        return None, "not an ES256 (EC P-256) key, which is what Studio's signing keys are"
    spki = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(spki).decode(), ""


# -- applying ------------------------------------------------------------------------------


@dataclass
class Seeded:
    """What one start's seeding did: objects added, and objects already there."""

    added: int = 0
    kept: int = 0


class _Owned(Protocol):
    """A stored row of a tenant's: an asset, a webhook, a signing key."""

    @property
    def tenant(self) -> str: ...


class Seeder:
    """Applies a Seed through the use cases. Run once at start, after the parts have
    started and before the scheduler's loop does: seeded assets' steps are applied here,
    one asset at a time, with nothing else applying them meanwhile."""

    def __init__(
        self,
        *,
        store: Store,
        api_keys: ApiKeys,
        signing_keys: SigningKeys,
        assets: Assets,
        uploads: Uploads,
        processing: Processing,
        webhooks: Webhooks,
        origin: str,
    ) -> None:
        self._store = store
        self._api_keys = api_keys
        self._signing_keys = signing_keys
        self._assets = assets
        self._uploads = uploads
        self._processing = processing
        self._webhooks = webhooks
        self._origin = origin

    async def apply(self, seed: Seed) -> Seeded:
        done = Seeded()
        for tenant in seed.tenants:
            added = await self._api_keys.add_key(tenant.key, tenant.name)
            done.added += added
            for key in tenant.signing_keys:
                await self._count(done, self._signing_key(seed, tenant, key))
            # Assets before webhooks: a seeded webhook is not sent the seeding's own
            # events (its receiver is rarely up yet), only what happens after.
            for asset in tenant.assets:
                await self._count(done, self._asset(seed, tenant, asset))
            for hook in tenant.webhooks:
                await self._count(done, self._webhook(seed, tenant, hook))
        return done

    async def _count(self, done: Seeded, work: Awaitable[bool]) -> None:
        if await work:
            done.added += 1
        else:
            done.kept += 1

    def _refuse(self, seed: Seed, line: int, message: str) -> SeedError:
        return SeedError([Problem(seed.source, line, message)])

    def _exists(
        self, seed: Seed, tenant: SeedTenant, row: _Owned | None, line: int, what: str
    ) -> bool:
        """Whether an object with the seed's id is there already (left as it is: seeding is
        idempotent); an id that is another tenant's stops the start."""
        if row is None:
            return False
        if row.tenant != tenant.key:
            raise self._refuse(seed, line, f"{what} belongs to another tenant")
        return True

    async def _signing_key(self, seed: Seed, tenant: SeedTenant, key: SeedSigningKey) -> bool:
        row = await self._store.get_signing_key(key.key_id)
        if self._exists(seed, tenant, row, key.line, f"signing key id {key.key_id!r}"):
            return False
        await self._signing_keys.add_public_key(tenant.key, key.key_id, key.name, key.public_key)
        return True

    async def _webhook(self, seed: Seed, tenant: SeedTenant, hook: SeedWebhook) -> bool:
        row = await self._store.get_webhook(hook.webhook_id)
        if self._exists(seed, tenant, row, hook.line, f"webhook id {hook.webhook_id!r}"):
            return False
        body = {"name": hook.name, "url": hook.url, "events": list(hook.events)}
        if hook.shared_secret is not None:
            body["sharedSecret"] = hook.shared_secret
        try:
            await self._webhooks.create(tenant.key, body, self._origin, webhook_id=hook.webhook_id)
        except ApiError as exc:
            raise self._refuse(seed, hook.line, f"webhook {hook.name!r}: {exc}") from None
        return True

    async def _asset(self, seed: Seed, tenant: SeedTenant, asset: SeedAsset) -> bool:
        row = await self._store.get_asset(asset.asset_id)
        if self._exists(seed, tenant, row, asset.line, f"asset id {asset.asset_id!r}"):
            return False
        taken = await self._store.get_asset_by_playback_id(asset.playback_id)
        if taken is not None:
            raise self._refuse(
                seed, asset.line, f"playback id {asset.playback_id!r} is another asset's"
            )
        ids = (asset.asset_id, asset.playback_id, asset.task_id)
        body = {"name": asset.name}
        try:
            if asset.url is not None:
                if asset.phase == "failed":
                    self._processing.plan_fault(asset.asset_id, _failure(asset))
                await self._assets.import_from_url(
                    tenant.key, {**body, "url": asset.url}, token_name=tenant.name, ids=ids
                )
            else:
                _, token = await self._assets.request_upload(
                    tenant.key, body, self._origin, token_name=tenant.name, ids=ids
                )
                if asset.file is None:  # uploading: its bytes are to come
                    return True
                if asset.phase == "failed":
                    self._processing.plan_fault(asset.asset_id, _failure(asset))
                await self._uploads.receive_upload(token, _chunks(asset.file))
        except ApiError as exc:
            raise self._refuse(seed, asset.line, f"asset {asset.name!r}: {exc}") from None
        except OSError as exc:
            raise self._refuse(
                seed, asset.line, f"asset {asset.name!r}: cannot read its file: {exc}"
            ) from None
        await self._processing.settle(tenant.key)  # downloaded, hashed, probed, outputs made
        if asset.phase != AssetPhase.WAITING.value:
            until = None if asset.phase in ("ready", "failed") else asset.phase
            await self._processing.run_now(asset.asset_id, until)
        stored = await self._store.get_asset(asset.asset_id)
        phase = stored.doc["status"]["phase"] if stored is not None else "missing"
        if phase != asset.phase:
            why = stored.doc["status"].get("errorMessage") if stored is not None else None
            raise self._refuse(
                seed,
                asset.line,
                f"asset {asset.name!r} ended {phase}, not {asset.phase}"
                + (f": {why}" if why else ""),
            )
        return True


def _failure(asset: SeedAsset) -> ProcessingFault:
    """A `failed` asset fails as a scenario's fail_at_progress 0 makes it: its media is
    stored and probed, then its task fails at the start with the error."""
    return ProcessingFault(error=asset.error or DEFAULT_FAULT_ERROR, fail_at_progress=0.0)


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            yield chunk
