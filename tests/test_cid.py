"""emulator/cid.py: CIDs as `ipfs add --cid-version=1` gives them (Livepeer's export pins
with Pinata's `cidVersion: 1`: task-runner clients/ipfs.go; Studio stores the CID it gets
back in `storage.ipfs.cid`, task/scheduler.ts processTaskEvent).

Reference CIDs: "hello world\\n" and the empty file are the well-known kubo outputs; the
others were computed with the reference JS importer (npm ipfs-unixfs-importer 17, the
importer of js-ipfs/helia) set to kubo's CIDv1 defaults: fixed 262144-byte chunks, raw
leaves, balanced layout with 174 links per node, CIDv1, reduceSingleLeafToSelf. Inputs are
the byte pattern i % 251, so they are the same on every machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.cid import CHUNK_SIZE, MAX_LINKS, bytes_cid, file_cid, is_cid


def pattern(size: int) -> bytes:
    return (bytes(range(251)) * (size // 251 + 1))[:size]


VECTORS = [
    # One chunk or less: the raw leaf itself (multicodec raw, base32 "bafkrei…").
    (0, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
    (CHUNK_SIZE, "bafkreibruh455iawsviqslif5c7uurdcfdemh22mtnytyzvnzn75kpejxy"),
    # Past one chunk: a dag-pb UnixFS File node over raw leaves ("bafybei…").
    (CHUNK_SIZE + 1, "bafybeiexg2oqkfnj56l7fcmawswqbijt5shq4b5rg6a546uwpkqqzwjioi"),
    (4 * CHUNK_SIZE, "bafybeiedpcapwld4tkgtzwahfofgn4wex5ryysf4se6hwpmlrsh4ntnrau"),
    # Exactly one full node of 174 leaves, then one leaf more: a second level.
    (MAX_LINKS * CHUNK_SIZE, "bafybeihpe5snhzneq7xs53nivmsopto5lrogo3wjynauqylqeym5a3irbm"),
    (MAX_LINKS * CHUNK_SIZE + 1, "bafybeib4y7ghw2rq7bracc4xwtxrbzo7cfvagdpte2tmrkgwl6dyard3cm"),
]


def test_hello_world_is_kubos_well_known_cid() -> None:
    assert bytes_cid(b"hello world\n") == (
        "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
    )


@pytest.mark.parametrize(("size", "expected"), VECTORS, ids=[str(s) for s, _ in VECTORS])
def test_reference_vectors(size: int, expected: str) -> None:
    assert bytes_cid(pattern(size)) == expected


@pytest.mark.parametrize("size", [0, 1000, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17])
def test_a_file_on_disk_has_the_cid_of_its_bytes(tmp_path: Path, size: int) -> None:
    path = tmp_path / "video.mp4"
    path.write_bytes(pattern(size))
    assert file_cid(path) == bytes_cid(pattern(size))


def test_one_byte_changes_the_cid() -> None:
    data = bytearray(pattern(2 * CHUNK_SIZE))
    before = bytes_cid(bytes(data))
    data[-1] ^= 1
    assert bytes_cid(bytes(data)) != before


def test_is_cid() -> None:
    assert is_cid("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
    assert is_cid("QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR")
    assert not is_cid("abcd1234efgh5678")  # a playbackId
    assert not is_cid("")
