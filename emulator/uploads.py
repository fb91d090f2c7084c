"""Uploads by signed URL: which asset a token is for, and the direct PUT.

Both ways bytes arrive, a direct PUT (here) and tus (emulator/tus.py), check the token
here and write through Blobs, then hand the file to processing; one asset takes one
upload, whichever way it comes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

from emulator.blobs import Blobs
from emulator.errors import Forbidden, NotFound, UnprocessableEntity
from emulator.models import AssetPhase, ReceivedFile, TaskPhase
from emulator.processing import Processing
from emulator.scheduler import Scheduler
from emulator.store import AssetRow, Store, TaskRow
from emulator.tokens import InvalidToken, UploadTokens

# Studio's tus server names an upload after the asset's playbackId: directUpload/<id>.
TUS_ID_PREFIX = "directUpload/"


class Uploads:
    def __init__(
        self,
        *,
        store: Store,
        blobs: Blobs,
        scheduler: Scheduler,
        tokens: UploadTokens,
        processing: Processing,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._scheduler = scheduler
        self._tokens = tokens
        self._processing = processing

    async def receive_upload(self, token: str | None, chunks: AsyncIterator[bytes]) -> None:
        """A direct PUT: stream the body to disk, then schedule processing."""
        row, _ = await self.upload_target(token, via="direct")
        asset_id = row.doc["id"]
        # A retry may arrive before the server has noticed that the previous attempt's
        # connection died: it waits for that attempt to end (within the upload idle
        # timeout) instead of being refused. While held, tus creation is refused.
        async with self._blobs.writers.hold(asset_id):
            await self.upload_target(token, via="direct")  # still pending, now that we hold it
            received = await self._blobs.receive(chunks, asset_id)
            await self._processing.media_arrived(asset_id, received)

    async def upload_target(
        self, token: str | None, via: Literal["direct", "tus"] | None = None
    ) -> tuple[AssetRow, TaskRow]:
        """The asset and pending upload task a signed upload token points at.

        `via` names the way bytes are about to come: one asset takes one upload, so a way
        is refused while the other is under way (else both would land, and the asset be
        processed, and its webhooks sent, twice). Studio has no such guard; its refusal
        of an upload that can no longer land is 422 (`asset has already been uploaded`),
        so these are 422 too, which tus-js-client gives up on rather than retrying (as it
        would a 409 or 423).
        """
        try:
            playback_id = self._tokens.verify(token)
        except InvalidToken as exc:
            raise Forbidden(f"Invalid signed upload URL: {exc}") from None
        row = await self._store.get_asset_by_playback_id(playback_id)
        if row is None or row.doc.get("deleted"):
            raise NotFound("Asset not found")
        tasks = [
            t for t in await self._store.tasks_of_asset(row.doc["id"]) if t.doc["type"] == "upload"
        ]
        if (
            row.doc["status"]["phase"] != AssetPhase.UPLOADING.value
            or not tasks
            or tasks[0].doc["status"]["phase"] != TaskPhase.PENDING.value
        ):
            raise UnprocessableEntity("asset has already been uploaded")
        if via == "direct":
            tus = await self._store.get_tus_upload(TUS_ID_PREFIX + playback_id)
            if (
                tus is not None
                and not tus.completed
                and tus.expires_at > self._scheduler.now_ms(tus.tenant)
            ):
                raise UnprocessableEntity(
                    "asset has a tus upload in progress: finish or terminate it"
                )
        elif via == "tus" and self._blobs.writers.busy(row.doc["id"]):
            raise UnprocessableEntity("asset has a direct upload in progress")
        return row, tasks[0]

    async def tenant_of_upload_token(
        self, token: str | None, tus_upload_id: str | None = None
    ) -> str | None:
        """Whose upload a signed token (or a tus upload) is for; None if unknown. Uploads
        carry no API key, yet the uploader's scenario should apply to them."""
        if token is None and tus_upload_id is not None:
            tus = await self._store.get_tus_upload(tus_upload_id)
            return tus.tenant if tus is not None else None
        try:
            playback_id = self._tokens.verify(token)
        except InvalidToken:
            return None
        row = await self._store.get_asset_by_playback_id(playback_id)
        return row.tenant if row is not None else None

    async def media_arrived(self, asset_id: str, received: ReceivedFile) -> None:
        """A whole file is in place for the asset (tus's last byte): process it."""
        await self._processing.media_arrived(asset_id, received)
