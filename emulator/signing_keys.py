"""Studio's signing keys (controllers/signing-key.ts): ES256 key pairs whose public half
gates JWT playback, per tenant.

A key pair is made as Studio makes it (Node's generateKeyPair "ec", P-256, SPKI and
PKCS#8 PEM), each PEM base64-encoded: `publicKey` is stored, `privateKey` is answered once,
on creation, and never kept. The playback gate (emulator/access.py) finds keys by their
public key.
"""

from __future__ import annotations

import base64

from emulator.errors import Forbidden, NotFound
from emulator.models import Doc, new_id, tenant_project_id, tenant_user_id
from emulator.scheduler import Scheduler
from emulator.store import SIGNING_KEY_FIELDS, ListQuery, SigningKeyRow, Store
from emulator.validation import Schema

# Schemas new-signing-key-payload and signing-key-patch-payload (db-schema.yaml).
NEW_SIGNING_KEY: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "projectId": {"type": "string"}},
}
SIGNING_KEY_PATCH: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "disabled": {"type": "boolean"}},
}
# The fields a signing-key list may filter and sort on (what parse_list_query accepts).
SIGNING_KEY_LIST_FIELDS = tuple(SIGNING_KEY_FIELDS)
# Studio refuses a new key once a user has *more than* 10 (`output.length > 10`), so an
# 11th is still made; its schema's "up to 10" is one short of what the code does.
MAX_KEYS = 10
# `lastSeen` (Studio's tracking.recordSigningKeyValidation) is written at most this often
# per key: Studio batches it too, and a segment request should not cost a write.
SEEN_EVERY_MS = 60_000


def new_key_pair() -> tuple[str, str]:
    """(publicKey, privateKey) as Studio answers them: base64 of SPKI / PKCS#8 PEM."""
    # Here, not at the top: cryptography costs tens of ms of the server's start.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return base64.b64encode(public_pem).decode(), base64.b64encode(private_pem).decode()


class SigningKeys:
    def __init__(self, store: Store, scheduler: Scheduler) -> None:
        self._store = store
        self._scheduler = scheduler

    async def create(self, tenant: str, body: Doc) -> Doc:
        """POST /access-control/signing-key: the stored document plus `privateKey`."""
        count = await self._store.count_live_signing_keys(tenant)
        if count > MAX_KEYS:
            raise Forbidden("user can only have up to 10 signing keys, delete some first")
        public_key, private_key = new_key_pair()
        doc: Doc = {
            "id": new_id(),
            # JavaScript's `req.body.name || …`: an empty name gets the default too.
            "name": body.get("name") or f"Signing Key {count + 1}",
            "userId": tenant_user_id(tenant),
            "createdAt": self._scheduler.now_ms(tenant),
            "publicKey": public_key,
            "projectId": tenant_project_id(tenant),
        }
        await self._store.put_signing_key(SigningKeyRow(tenant, doc))
        return {**doc, "privateKey": private_key}

    async def add_public_key(self, tenant: str, key_id: str, name: str, public_key: str) -> Doc:
        """A key whose private half the caller already holds (a seed file's): stored as
        POST stores one, with this id and `publicKey` (base64 of its SPKI PEM)."""
        doc: Doc = {
            "id": key_id,
            "name": name,
            "userId": tenant_user_id(tenant),
            "createdAt": self._scheduler.now_ms(tenant),
            "publicKey": public_key,
            "projectId": tenant_project_id(tenant),
        }
        await self._store.put_signing_key(SigningKeyRow(tenant, doc))
        return doc

    async def list_keys(self, tenant: str, query: ListQuery) -> tuple[list[Doc], int | None]:
        return await self._store.list_signing_keys(tenant, query)

    async def _owned(self, tenant: str, key_id: str) -> SigningKeyRow:
        """checkResourceAccess: missing, deleted and other users' keys are all 404."""
        row = await self._store.get_signing_key(key_id)
        if row is None or row.deleted or row.tenant != tenant:
            raise NotFound("not found")
        return row

    async def get(self, tenant: str, key_id: str) -> Doc:
        return (await self._owned(tenant, key_id)).doc

    async def update(self, tenant: str, key_id: str, patch: Doc) -> None:
        """PATCH: `name` and `disabled` (the schema allows nothing else); 204."""
        row = await self._owned(tenant, key_id)
        row.doc.update(patch)
        await self._store.put_signing_key(row)

    async def delete(self, tenant: str, key_id: str) -> None:
        """DELETE: marked deleted (the gate then refuses its tokens), hidden from reads."""
        row = await self._owned(tenant, key_id)
        row.doc["deleted"] = True
        await self._store.put_signing_key(row)

    # -- for the playback gate -----------------------------------------------------------

    async def by_public_key(self, public_key: str) -> list[SigningKeyRow]:
        return await self._store.signing_keys_by_public_key(public_key)

    async def note_seen(self, row: SigningKeyRow) -> None:
        now = self._scheduler.now_ms(row.tenant)
        if now - int(row.doc.get("lastSeen") or 0) >= SEEN_EVERY_MS:
            await self._store.note_signing_key_seen(row.doc["id"], now, now - SEEN_EVERY_MS + 1)

    async def reset(self, tenant: str | None) -> None:
        await self._store.reset_signing_keys(tenant)
