"""tus 1.0.0 resumable uploads, mounted where Studio mounts them (/api/asset/upload/tus).

Owns the protocol only: header checks, offsets, one request at a time per upload, the
uploads' rows in the store, expiry. The bytes go where a direct PUT's go, through Blobs
(a resumable partial file per upload, keyed by its playbackId). The signed upload token
links an upload to its asset exactly as a direct PUT does (emulator/uploads.py); when the
last byte arrives the file is committed as the asset's media and processing takes over,
so it is the same whichever way the bytes came.

Errors here are TusError values answered as plain text, because Studio's tus server
(@tus/server) answers them that way; token problems stay Studio's JSON ApiErrors.

Why not the `aiohttp-tus` package: it reads each PATCH body whole into memory
(`await request.read()`), writes with blocking file I/O on the event loop, answers a
missing Tus-Resumable with 500, supports neither creation-with-upload, defer-length nor
expiration, names uploads by random ids rather than `directUpload/<playbackId>`, and keeps
its state in JSON files instead of the emulator's store.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import quote, unquote

from emulator.blobs import Blobs, TooLarge
from emulator.errors import ApiError, Unauthorized, UnprocessableEntity
from emulator.keyed import Busy, KeyedLocks
from emulator.scheduler import Scheduler
from emulator.store import Store, TusRow
from emulator.uploads import TUS_ID_PREFIX, Uploads

log = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
EXTENSIONS = (
    "creation",
    "creation-with-upload",
    "creation-defer-length",
    "termination",
    "expiration",
)
MAX_SIZE = 10 * 1024**3
OCTET_STREAM = "application/offset+octet-stream"
ID_PREFIX = TUS_ID_PREFIX  # Studio's naming function: directUpload/<playbackId>
EXPIRES_AFTER_MS = 24 * 60 * 60 * 1000  # an unfinished upload lives a day from creation
# How long a HEAD or DELETE waits for a PATCH in flight on the same upload to end (its
# client may just have dropped the connection) before answering without it.
LOCK_WAIT_SECONDS = 5.0
# A PATCH's last batch is written before it is answered, and a tus client waits for that
# answer before sending the next PATCH: smaller batches than a direct PUT's keep that
# pause short (a 2 GiB upload in 8 MiB PATCHes: 53% of a bare PUT's speed with 4 MiB
# batches, 62% with 1 MiB; bench/bench_tus.py) and keep many concurrent uploads small.
PATCH_BATCH_BYTES = 1024 * 1024


class TusError(Exception):
    """A protocol refusal: status, a plain-text message, and headers the client needs."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = {"Tus-Resumable": TUS_VERSION, **(headers or {})}


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


def _check_version(headers: Mapping[str, str]) -> None:
    if headers.get("Tus-Resumable") != TUS_VERSION:
        raise TusError(412, "Unsupported version", {"Tus-Version": TUS_VERSION})


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    """A non-negative integer header; None when absent, 400 when malformed."""
    value = headers.get(name)
    if value is None:
        return None
    # ASCII digits only (isdigit alone takes "²" or fullwidth digits), and within int64 as tusd's
    # ParseInt: that also keeps int() from ever seeing thousands of digits.
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) >= 2**63:
        raise TusError(400, f"Invalid {name} header")
    return int(value)


def _check_metadata(value: str | None) -> None:
    """Upload-Metadata: comma-separated `key base64value` pairs with unique keys."""
    if not value:
        return
    keys: set[str] = set()
    for pair in value.split(","):
        parts = pair.strip().split(" ")
        key = parts[0]
        if not key or len(parts) > 2 or key in keys:
            raise TusError(400, "Upload-Metadata is invalid")
        keys.add(key)
        if len(parts) == 2:
            try:
                base64.b64decode(parts[1], validate=True)
            except binascii.Error:
                raise TusError(400, "Upload-Metadata is invalid") from None


def _has_body(headers: Mapping[str, str]) -> bool:
    length = headers.get("Content-Length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "chunked" in headers.get("Transfer-Encoding", "").lower()


def _http_date(ms: int) -> str:
    return format_datetime(datetime.fromtimestamp(ms / 1000, tz=timezone.utc), usegmt=True)


def upload_path(upload_id: str) -> str:
    """The Location path segment: the id with its slash encoded, as Studio answers it."""
    return quote(upload_id, safe="")


def _key(upload_id: str) -> str:
    """Which partial file (emulator/blobs.py) is the upload's: ids are
    directUpload/<playbackId>, and the playbackId alone names the file."""
    return upload_id.removeprefix(ID_PREFIX)


class TusUploads:
    """The tus protocol; also the scheduler's "tus expiry" TimedWork."""

    def __init__(
        self, *, uploads: Uploads, store: Store, blobs: Blobs, scheduler: Scheduler
    ) -> None:
        self.uploads = uploads
        self.store = store
        self.blobs = blobs
        self.clock = scheduler  # now_ms: each tenant's time
        self.dir = blobs.resumable_dir  # where the uploads' partial files are
        self._busy = KeyedLocks()  # by upload id: the uploads with a request in flight

    async def start(self) -> None:
        """Drop partial files whose row was deleted while the server was down."""
        self.blobs.keep_only([_key(row.id) for row in await self.store.tus_uploads()])

    # -- the protocol -------------------------------------------------------------------

    def options(self) -> Reply:
        return Reply(
            204,
            {
                "Tus-Resumable": TUS_VERSION,
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": ",".join(EXTENSIONS),
                "Tus-Max-Size": str(MAX_SIZE),
            },
        )

    async def create(
        self,
        token: str | None,
        headers: Mapping[str, str],
        body: AsyncIterator[bytes],
        origin: str,
    ) -> Reply:
        """POST ?token=…: a new upload for the token's asset (restarting an unfinished one)."""
        if not token:
            raise Unauthorized("Missing uploadToken metadata from /request-upload API")
        asset, _ = await self.uploads.upload_target(token, via="tus")
        _check_version(headers)
        if "Upload-Concat" in headers:
            raise TusError(501, "Concatenation extension is not (yet) supported")
        length = _int_header(headers, "Upload-Length")
        deferred = headers.get("Upload-Defer-Length")
        if (length is None) == (deferred is None) or deferred not in (None, "1"):
            raise TusError(400, "Upload-Length or Upload-Defer-Length header required")
        if length is not None and length > MAX_SIZE:
            raise TusError(413, "Maximum size exceeded")
        metadata = headers.get("Upload-Metadata")
        _check_metadata(metadata)
        upload_id = ID_PREFIX + asset.doc["playbackId"]
        tenant = asset.tenant
        now = self.clock.now_ms(tenant)
        row = TusRow(
            id=upload_id,
            tenant=tenant,
            asset_id=asset.doc["id"],
            token=token,
            length=length,
            offset=0,
            metadata=metadata,
            created_at=now,
            expires_at=now + EXPIRES_AFTER_MS,
        )
        async with self._locked(upload_id, wait=False):
            await self._claim(row)
            if _has_body(headers) and headers.get("Content-Type") == OCTET_STREAM:
                await self._receive(row, body, _int_header(headers, "Content-Length"))
            if row.offset == row.length and not row.completed:  # Upload-Length: 0
                await self._complete(row)
        reply = self._progress(row, 201)
        reply.headers["Location"] = f"{origin}/api/asset/upload/tus/{upload_path(upload_id)}"
        reply.headers["livepeer-playback-id"] = asset.doc["playbackId"]
        return reply

    async def head(self, raw_id: str, headers: Mapping[str, str]) -> Reply:
        _check_version(headers)
        upload_id = unquote(raw_id)
        # A PATCH in flight (perhaps from a client that just went away) ends first, so the
        # offset answered is everything that reached the disk.
        with contextlib.suppress(Busy):
            async with self._busy.hold(upload_id, timeout=LOCK_WAIT_SECONDS):
                pass
        row = await self._live(upload_id)
        reply = self._progress(row, 200)
        reply.headers["Cache-Control"] = "no-store"
        if row.length is None:
            reply.headers["Upload-Defer-Length"] = "1"
        else:
            reply.headers["Upload-Length"] = str(row.length)
        if row.metadata:
            reply.headers["Upload-Metadata"] = row.metadata
        return reply

    async def patch(
        self, raw_id: str, headers: Mapping[str, str], body: AsyncIterator[bytes]
    ) -> Reply:
        _check_version(headers)
        upload_id = unquote(raw_id)
        async with self._locked(upload_id, wait=False):
            row = await self._live(upload_id)
            if headers.get("Content-Type") != OCTET_STREAM:
                raise TusError(415, f"Content-Type must be {OCTET_STREAM}")
            offset = _int_header(headers, "Upload-Offset")
            if offset is None:
                raise TusError(400, "Upload-Offset header required")
            new_length = _int_header(headers, "Upload-Length")
            content_length = _int_header(headers, "Content-Length")
            if offset != row.offset:
                raise TusError(409, "Upload-Offset conflict")
            if new_length is not None:
                if row.length is not None and new_length != row.length:
                    raise TusError(400, "Upload-Length cannot be changed")
                if new_length < row.offset or new_length > MAX_SIZE:
                    raise TusError(413 if new_length > MAX_SIZE else 400, "Invalid Upload-Length")
                row.length = new_length
            await self._receive(row, body, content_length)
        return self._progress(row, 204)

    async def terminate(self, raw_id: str, headers: Mapping[str, str]) -> Reply:
        _check_version(headers)
        upload_id = unquote(raw_id)
        async with self._locked(upload_id, wait=True):
            row = await self._live(upload_id)
            await self._discard(row)
        return Reply(204, {"Tus-Resumable": TUS_VERSION})

    # -- time and resets ----------------------------------------------------------------

    async def due_times(self, tenant: str | None) -> list[tuple[str, int]]:
        """When unfinished uploads expire (the scheduler's TimedWork)."""
        return [
            (row.tenant, row.expires_at)
            for row in await self.store.tus_uploads(tenant)
            if not row.completed
        ]

    async def run_due(self, tenant: str | None, deadline: float) -> int:
        """Drop uploads whose time is up on their tenant's clock (None: every tenant).
        Counts nothing: `applied` in a clock advance counts processing steps."""
        for row in await self.store.tus_uploads(tenant):
            expired = row.expires_at <= self.clock.now_ms(row.tenant)
            if expired and not row.completed and not self._busy.busy(row.id):
                await self._discard(row)
        return 0

    async def settle(self, tenant: str | None) -> None:
        """Nothing runs in the background here."""

    async def forget(self, tenant: str | None) -> None:
        """A control-plane reset: the tenant's uploads go with its assets."""
        for row in await self.store.tus_uploads(tenant):
            await self._discard(row)

    # -- internals ----------------------------------------------------------------------

    async def _claim(self, row: TusRow) -> None:
        """Make `row` the asset's upload, unless a direct PUT has the asset.

        Under the asset's writer lock, so that no PUT starts in between: one that starts
        afterwards finds this row and is refused (Uploads.upload_target).
        """
        writers = self.blobs.writers
        if writers.busy(row.asset_id):  # checked and taken without yielding in between
            raise UnprocessableEntity("asset has a direct upload in progress")
        async with writers.hold(row.asset_id):
            await self.uploads.upload_target(row.token)  # a PUT may have landed meanwhile
            previous = await self.store.get_tus_upload(row.id)
            if previous is not None and previous.completed:
                raise UnprocessableEntity("asset has already been uploaded")
            self.blobs.discard(_key(row.id))
            await self.store.put_tus_upload(row)

    @contextlib.asynccontextmanager
    async def _locked(self, upload_id: str, *, wait: bool) -> AsyncIterator[None]:
        """One request at a time per upload; a second PATCH is refused (423), not queued,
        and a DELETE waits LOCK_WAIT_SECONDS at most.

        Taking a free upload never yields to the event loop, so a request holds the upload
        before any request that arrived after it can look at it.
        """
        async with contextlib.AsyncExitStack() as held:
            try:  # only the taking: a Busy from the block is not this upload's 423
                await held.enter_async_context(
                    self._busy.hold(upload_id, wait=wait, timeout=LOCK_WAIT_SECONDS)
                )
            except Busy:
                raise TusError(423, "file is currently locked") from None
            yield

    async def _live(self, upload_id: str) -> TusRow:
        """The upload, or 404; one past its expiry is dropped on the spot (410)."""
        row = await self.store.get_tus_upload(upload_id)
        if row is None:
            raise TusError(404, "The file for this url was not found")
        if not row.completed and row.expires_at <= self.clock.now_ms(row.tenant):
            await self._discard(row)
            raise TusError(410, "The file for this url no longer exists")
        return row

    def _progress(self, row: TusRow, status: int) -> Reply:
        """What every 2xx carries: the offset, and the expiry while bytes are still due."""
        headers = {"Tus-Resumable": TUS_VERSION, "Upload-Offset": str(row.offset)}
        if not row.completed:
            headers["Upload-Expires"] = _http_date(row.expires_at)
        return Reply(status, headers)

    async def _receive(
        self, row: TusRow, body: AsyncIterator[bytes], content_length: int | None
    ) -> None:
        """Append a body at row.offset, keeping whatever arrived even if the client leaves."""
        if (
            row.length is not None
            and content_length is not None
            and row.offset + content_length > row.length
        ):
            raise TusError(413, "Maximum size exceeded")
        key = _key(row.id)
        limit = None if row.length is None else row.length - row.offset
        try:
            await self.blobs.append(
                key, row.offset, body, limit=limit, batch_bytes=PATCH_BATCH_BYTES
            )
        except TooLarge:
            raise TusError(413, "Maximum size exceeded") from None
        finally:
            row.offset = self.blobs.size(key)  # all that arrived, even if the client left
            await asyncio.shield(self.store.update_tus_upload(row))
        if row.length is not None and row.offset == row.length and not row.completed:
            await self._complete(row)

    async def _complete(self, row: TusRow) -> None:
        """The last byte arrived: move the file into place and hand it to processing."""
        try:
            await self.uploads.upload_target(row.token)  # still the asset's pending upload?
        except ApiError:
            await self._discard(row)
            raise
        received = self.blobs.commit(_key(row.id), row.asset_id)
        row.completed = True
        await self.store.update_tus_upload(row)
        await self.uploads.media_arrived(row.asset_id, received)

    async def _discard(self, row: TusRow) -> None:
        await self.store.delete_tus_upload(row.id)
        if not row.completed:
            self.blobs.discard(_key(row.id))
