"""URL imports: downloading a source URL to disk, streamed, within size and time limits."""

from __future__ import annotations

import asyncio

import aiohttp

from emulator.blobs import CHUNK_SIZE, Blobs, TooLarge
from emulator.models import ReceivedFile


class DownloadFailed(Exception):
    """Why a URL could not be imported, worded for the asset's errorMessage."""


async def download(
    url: str, blobs: Blobs, asset_id: str, *, max_bytes: int, timeout: float
) -> ReceivedFile:
    limit = aiohttp.ClientTimeout(total=timeout)
    try:
        async with aiohttp.ClientSession(timeout=limit) as session, session.get(url) as resp:
            if resp.status >= 400:
                raise DownloadFailed(
                    f"failed to download: {resp.status} {resp.reason or ''}".rstrip()
                )
            declared = resp.content_length
            if declared is not None and declared > max_bytes:
                raise DownloadFailed(f"failed to download: file larger than {max_bytes} bytes")
            return await blobs.receive(
                resp.content.iter_chunked(CHUNK_SIZE), asset_id, max_bytes=max_bytes
            )
    except TooLarge:
        raise DownloadFailed(f"failed to download: file larger than {max_bytes} bytes") from None
    except asyncio.TimeoutError:
        raise DownloadFailed(f"failed to download: timed out after {timeout:g}s") from None
    except (aiohttp.InvalidURL, ValueError):
        # ValueError: also a host name IDNA cannot encode (`http://a..b/`), raised by
        # aiohttp before any lookup; UnicodeError is one.
        raise DownloadFailed(f"failed to download: invalid URL {url}") from None
    except aiohttp.ClientConnectorError as exc:
        raise DownloadFailed(
            f"failed to download: cannot connect to {exc.host}:{exc.port}"
        ) from None
    except aiohttp.ClientError as exc:
        raise DownloadFailed(f"failed to download: {exc.__class__.__name__}: {exc}") from None
