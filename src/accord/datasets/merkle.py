"""Merkle trees over training-set entries, exactly as RFC 6962 §2.1 / RFC 9162 §2.1 define them.

A rights holder can check, from a root hash alone, that one of their recordings is (or is
not) in a training set, without seeing the rest of the set. Everything here is the standard
library's SHA-256 (:mod:`hashlib`) and nothing else, so it can be re-implemented from this docstring:

* leaf hash ``= SHA-256(0x00 || leaf bytes)`` and node hash ``= SHA-256(0x01 || left || right)``.
  The distinct one-byte prefixes (domain separation) stop an interior node from being passed
  off as a leaf (second-preimage attack).
* The Merkle Tree Hash of ``n`` leaves ``D[0:n]`` is ``SHA-256("")`` for ``n = 0``, the leaf
  hash for ``n = 1``, and for ``n > 1``, with ``k`` the largest power of two ``< n``,
  ``node_hash(MTH(D[0:k]), MTH(D[k:n]))``.
* Equivalently, level by level: hash the leaves, then pair neighbours left to right; when a
  level has an odd count its last node is *promoted* unchanged to the next level (never paired
  with a copy of itself, which would let ``[a, b, c]`` and ``[a, b, c, c]`` share a root).
* An inclusion proof (audit path) for leaf ``m`` lists the sibling hashes from the leaf up to
  the root, skipping the levels where the node was promoted without a sibling.

These match Certificate Transparency logs bit for bit; ``tests/data/merkle_vectors.json``
holds the published reference vectors.

**Leaves that commit without revealing** (manifest format 2). A training set's leaves are
built from a per-manifest secret ``salt`` (32 bytes, kept by the operator) so that a leaf
shown to one rights holder says nothing about another's recording, and nobody can test a
guessed ISRC against it:

* ``isrc_key = HMAC-SHA256(salt, "accord-isrc" || 0x00 || ISRC)``: the keyed hash of an ISRC
  (ASCII, compact); the leaves are sorted by it;
* ``blind = HMAC-SHA256(salt, "accord-blind" || 0x00 || ISRC)``: one item's blinding value;
* each party or agreement id in an item's ``agreements``, ``master_owners``, ``publishers`` and
  ``standing`` is committed to on its own: ``value_blind = HMAC-SHA256(salt, "accord-value" ||
  0x00 || ISRC || 0x00 || field || 0x00 || value)`` and ``value_commitment = SHA-256("accord-value"
  || 0x00 || value_blind || value)``; the item's *committed form* is the item with each of those
  lists replaced by its values' commitments (hex, sorted), so a proof can show a co-owner that
  asked not to be named only as a commitment;
* ``item_hash = SHA-256("accord-item" || 0x00 || blind || canonical JSON of the committed form)``;
* leaf bytes ``= isrc_key || item_hash`` (64 bytes), hashed as any leaf above;
* ``salt_commitment = SHA-256("accord-salt" || 0x00 || salt)``, in the signed statement, lets an
  auditor who is given the salt check every keyed hash the operator ever signed.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from hashlib import sha256
from itertools import islice

HASH_SIZE = 32
"""Bytes in every hash: leaf hashes, node hashes, roots and proof elements (SHA-256)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_CHUNK = 1 << 16  # digests joined at a time while building: bounds the temporary objects to ~5 MB
EMPTY_ROOT = sha256(b"").digest()
"""Root of the tree with no leaves: SHA-256 of the empty string (RFC 6962 §2.1)."""


SALT_SIZE = 32
"""Bytes in a manifest's secret salt."""


def isrc_key(salt: bytes, isrc: str) -> bytes:
    """The keyed hash of an ISRC: ``HMAC-SHA256(salt, "accord-isrc" || 0x00 || ISRC)``."""
    return hmac.new(salt, b"accord-isrc\x00" + isrc.encode("ascii"), sha256).digest()


def item_blind(salt: bytes, isrc: str) -> bytes:
    """The blinding value of one item: ``HMAC-SHA256(salt, "accord-blind" || 0x00 || ISRC)``."""
    return hmac.new(salt, b"accord-blind\x00" + isrc.encode("ascii"), sha256).digest()


COMMITTED_FIELDS = ("agreements", "master_owners", "publishers", "standing")
"""Item fields whose values (party and agreement ids) are each committed to on their own."""


def value_blind(salt: bytes, isrc: str, name: str, value: str) -> bytes:
    """The blinding value of one id in an item's list field."""
    message = b"\x00".join((b"accord-value", isrc.encode("ascii"), name.encode(), value.encode()))
    return hmac.new(salt, message, sha256).digest()


def value_commitment(blind: bytes, value: str) -> bytes:
    """``SHA-256("accord-value" || 0x00 || blind || value)``: one id, shown or not."""
    return sha256(b"accord-value\x00" + blind + value.encode()).digest()


def item_hash(blind: bytes, item_bytes: bytes) -> bytes:
    """A blinded commitment to one item: ``SHA-256("accord-item" || 0x00 || blind || item bytes)``."""
    return sha256(b"accord-item\x00" + blind + item_bytes).digest()


def commitment_leaf(key: bytes, committed: bytes) -> bytes:
    """The leaf bytes of one item: its ISRC's keyed hash, then its item hash (64 bytes)."""
    return key + committed


def salt_commitment(salt: bytes) -> bytes:
    """What the signed statement says of the salt: ``SHA-256("accord-salt" || 0x00 || salt)``."""
    return sha256(b"accord-salt\x00" + salt).digest()


def leaf_hash(data: bytes) -> bytes:
    """Hash one leaf's data: ``SHA-256(0x00 || data)``."""
    return sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two children into their parent: ``SHA-256(0x01 || left || right)``."""
    return sha256(_NODE_PREFIX + left + right).digest()


class MerkleTree:
    """An RFC 6962 Merkle tree over leaf data, keeping every level for proofs.

    Built bottom-up in O(n) hashes. Each level is stored as one contiguous ``bytes`` of
    ``HASH_SIZE``-byte hashes (node ``i`` at offset ``32 * i``), which keeps a million-leaf
    tree at about 64 MB instead of two million small objects.
    """

    __slots__ = ("_levels", "_size")

    def __init__(self, leaves: Sequence[bytes]) -> None:
        level = _hash_each(_LEAF_PREFIX, leaves)
        self._size = len(leaves)
        self._levels: list[bytes] = [level]
        while len(level) > HASH_SIZE:
            level = _parent_level(level)
            self._levels.append(level)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    @property
    def root(self) -> bytes:
        """The Merkle Tree Hash of all leaves (``EMPTY_ROOT`` when there are none)."""
        return self._levels[-1] if self._size else EMPTY_ROOT

    def leaf_hash_at(self, index: int) -> bytes:
        """The leaf hash of leaf ``index``; raises ``IndexError`` outside ``0 <= index < size``."""
        self._check_index(index)
        return self._levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE]

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The RFC 9162 §2.1.3.1 audit path for leaf ``index``, ordered from the leaf up.

        At each level the sibling of the current node (``index ^ 1``) is added if it exists;
        a node with no sibling is the promoted last node and contributes nothing. The proof
        for a one-leaf tree is empty.
        """
        self._check_index(index)
        proof: list[bytes] = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling * HASH_SIZE < len(level):
                proof.append(level[sibling * HASH_SIZE : (sibling + 1) * HASH_SIZE])
            index >>= 1
        return proof

    def _check_index(self, index: int) -> None:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self._size:
            msg = f"index: {index!r} is not a leaf index of this tree (expected an int in 0..{self._size - 1})"
            raise IndexError(msg)


def _parent_level(level: bytes) -> bytes:
    """Hash neighbouring pairs of a level into the next; an odd last node is promoted as is."""
    paired_end = len(level) - (len(level) // HASH_SIZE % 2) * HASH_SIZE
    step = 2 * HASH_SIZE
    pairs = (level[o : o + step] for o in range(0, paired_end, step))  # left || right, side by side
    return _hash_each(_NODE_PREFIX, pairs) + level[paired_end:]


def _hash_each(prefix: bytes, pieces: Iterable[bytes]) -> bytes:
    """``SHA-256(prefix || piece)`` of every piece, concatenated, joined a chunk at a time."""
    chunks: list[bytes] = []
    rest = iter(pieces)
    while batch := [sha256(prefix + piece).digest() for piece in islice(rest, _CHUNK)]:
        chunks.append(b"".join(batch))
    return b"".join(chunks)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of ``leaves`` (leaf data, not hashes)."""
    return MerkleTree(leaves).root


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether ``leaf`` (data) is leaf ``index`` of the ``tree_size``-leaf tree with ``root``.

    Returns ``False``, never raises, for any malformed input.
    """
    if not isinstance(leaf, bytes | bytearray):
        return False
    return verify_inclusion_of_hash(leaf_hash(bytes(leaf)), index, tree_size, proof, root)


def verify_inclusion_of_hash(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: whether ``leaf_hash`` is leaf ``index`` of the tree with ``root``.

    The algorithm walks the proof with ``fn = index`` and ``sn = tree_size - 1``:

    1. fail if ``index >= tree_size``; set ``r = leaf_hash``;
    2. for each proof element ``p``: fail if ``sn == 0``; if ``fn`` is odd or ``fn == sn``,
       set ``r = node_hash(p, r)`` and, if ``fn`` was even (a promoted node), shift ``fn``
       and ``sn`` right until ``fn`` is odd or zero; otherwise set ``r = node_hash(r, p)``;
       then shift ``fn`` and ``sn`` right once;
    3. succeed only if ``sn == 0`` (the proof had exactly the right length) and ``r == root``.

    Every left/right choice and every skipped level is derived from ``index`` and
    ``tree_size``, never read from the proof, so a proof binds the index exactly, and the
    size up to the shape of the path: sizes whose path for this index has the same shape
    (leaf 0 of 6 leaves or of 7) cannot be told apart, so take ``tree_size`` from the same
    trusted record as ``root``.
    Returns ``False``, never raises, for any malformed input.
    """
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_count(index) and _is_count(tree_size)):
        return False
    if index >= tree_size or isinstance(proof, bytes | bytearray | str):
        return False
    try:
        elements = list(proof)
    except TypeError:
        return False
    fn, sn, r = index, tree_size - 1, bytes(leaf_hash)
    for p in elements:
        if sn == 0 or not _is_hash(p):
            return False
        if fn & 1 or fn == sn:
            r = node_hash(bytes(p), r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, bytes(p))
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == bytes(root)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
