"""The IPFS CID of a file's bytes, as `ipfs add --cid-version=1` (kubo) gives it. Pure.

kubo's defaults for CIDv1 are the parameters Livepeer's export pins with (Pinata with
`{"cidVersion": 1}`): the file is cut into fixed 256 KiB chunks; each chunk is a raw leaf
(multicodec `raw`, CID `bafkrei…`); a file of one chunk is that leaf; a longer one is a
balanced DAG of UnixFS `File` nodes in dag-pb with at most 174 links each (CID `bafybei…`).
Every hash is sha2-256, every CID is version 1 written in base32.

The `multiformats` library makes the CIDs and multihashes. No maintained Python library
writes UnixFS dag-pb nodes (PyPI's `ipld-dag-pb` is a 0.0.1 placeholder; `libipld` has no
dag-pb encoder), and a node is two tiny protobuf messages, so they are written here, in
the byte order the dag-pb spec fixes (links before data, fields in number order).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from multiformats import CID, multihash, varint

CHUNK_SIZE = 256 * 1024  # kubo's default chunker, size-262144
MAX_LINKS = 174  # kubo's balanced layout: links per node
HASH = "sha2-256"
BASE = "base32"
_UNIXFS_FILE = 2  # UnixFS Data.DataType.File


@dataclass(frozen=True)
class _Block:
    cid: CID
    content_size: int  # bytes of the file under this block
    tree_size: int  # bytes of every block under this one, itself included (a link's Tsize)


def file_cid(path: Path) -> str:
    """The CID of a file on disk, read in chunks (never whole into memory)."""
    with path.open("rb") as f:
        return _root(_read_chunks(f))


def bytes_cid(data: bytes) -> str:
    """The CID of bytes held in memory (e.g. an NFT metadata JSON)."""
    chunks = (data[i : i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE))
    return _root(chunks)


def is_cid(text: str) -> bool:
    """Whether `text` reads as a CID (v0 or v1, any multibase)."""
    try:
        CID.decode(text)
    except Exception:  # the library raises several kinds for text that is not a CID
        return False
    return True


def _read_chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(CHUNK_SIZE):
        yield chunk


def _root(chunks: Iterable[bytes]) -> str:
    level = [_leaf(chunk) for chunk in chunks] or [_leaf(b"")]
    # Grouping each level by MAX_LINKS, bottom up, gives the tree kubo's balanced
    # builder fills top down: every node full but the last of its level.
    while len(level) > 1:
        level = [_node(level[i : i + MAX_LINKS]) for i in range(0, len(level), MAX_LINKS)]
    return str(level[0].cid)


def _leaf(chunk: bytes) -> _Block:
    cid = CID(BASE, 1, "raw", multihash.digest(chunk, HASH))
    return _Block(cid, len(chunk), len(chunk))


def _node(children: list[_Block]) -> _Block:
    """A UnixFS File node linking `children`, in dag-pb."""
    content = sum(c.content_size for c in children)
    unixfs = _varint_field(1, _UNIXFS_FILE) + _varint_field(3, content)
    for child in children:
        unixfs += _varint_field(4, child.content_size)  # blocksizes, not packed
    encoded = b"".join(_bytes_field(2, _link(child)) for child in children)
    encoded += _bytes_field(1, unixfs)
    cid = CID(BASE, 1, "dag-pb", multihash.digest(encoded, HASH))
    return _Block(cid, content, len(encoded) + sum(c.tree_size for c in children))


def _link(child: _Block) -> bytes:
    """PBLink: Hash, Name (kubo writes an empty one), Tsize."""
    return (
        _bytes_field(1, bytes(child.cid)) + _bytes_field(2, b"") + _varint_field(3, child.tree_size)
    )


def _bytes_field(number: int, value: bytes) -> bytes:
    return varint.encode(number << 3 | 2) + varint.encode(len(value)) + value


def _varint_field(number: int, value: int) -> bytes:
    return varint.encode(number << 3) + varint.encode(value)
