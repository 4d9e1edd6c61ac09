"""Specification of accord.datasets.merkle: RFC 6962 / RFC 9162 trees, audit paths and their verification."""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.datasets.manifest import Manifest, ManifestHeader, ManifestItem
from accord.datasets.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleTree,
    commitment_leaf,
    isrc_key,
    item_blind,
    item_hash,
    leaf_hash,
    merkle_root,
    node_hash,
    salt_commitment,
    verify_inclusion,
    verify_inclusion_of_hash,
)
from accord.datasets.proofs import make_proof, verify_proof
from accord.registry.entities import Use
from accord.signing import OperatorKey

VECTORS = json.loads((Path(__file__).parent / "data" / "merkle_vectors.json").read_text())
LEAVES = [bytes.fromhex(h) for h in VECTORS["leaves_hex"]]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# A reference written straight from the RFC 6962 §2.1 definitions, recursion and all.


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def ref_mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return sha256(b"").digest()
    if len(leaves) == 1:
        return sha256(b"\x00" + leaves[0]).digest()
    k = _split(len(leaves))
    return sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_shape(m: int, n: int) -> list[str]:
    """Which side each audit-path element sits on, leaf up: the only thing (index, size) decide."""
    if n == 1:
        return []
    k = _split(n)
    return [*ref_shape(m, k), "right"] if m < k else [*ref_shape(m - k, n - k), "left"]


def flip_bit(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# Distinct leaves: with two equal leaves, swapping their indices would rightly still verify.
# Non-empty, so every leaf has a bit to flip (the empty leaf is covered by the CT vectors).
distinct_leaves = st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=48, unique=True)


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[list[bytes], MerkleTree, int]:
    leaves = draw(distinct_leaves)
    return leaves, MerkleTree(leaves), draw(st.integers(0, len(leaves) - 1))


# Published reference vectors (Certificate Transparency).


def test_empty_tree_root_is_sha256_of_the_empty_string():
    assert bytes.fromhex(VECTORS["empty_root"]) == EMPTY_ROOT == sha256(b"").digest()
    assert MerkleTree([]).root == merkle_root([]) == EMPTY_ROOT
    assert MerkleTree([]).size == 0


def test_leaf_and_node_hashes_match_the_rfc6962_hasher_vectors():
    hasher = VECTORS["hasher"]
    assert leaf_hash(hasher["leaf"]["data_ascii"].encode()).hex() == hasher["leaf"]["hash"]
    node = hasher["node"]
    assert node_hash(node["left_ascii"].encode(), node["right_ascii"].encode()).hex() == node["hash"]
    assert [leaf_hash(leaf).hex() for leaf in LEAVES] == VECTORS["leaf_hashes"]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_certificate_transparency_vectors(size: int):
    expected = VECTORS["roots_by_size"][str(size)]
    assert MerkleTree(LEAVES[:size]).root.hex() == expected
    assert merkle_root(LEAVES[:size]).hex() == expected
    assert MerkleTree(LEAVES[:size]).size == size


@pytest.mark.parametrize("vector", VECTORS["inclusion_proofs"], ids=lambda v: f"{v['index']}of{v['tree_size']}")
def test_inclusion_proofs_match_the_certificate_transparency_vectors(vector: dict):
    index, size = vector["index"], vector["tree_size"]
    proof = [bytes.fromhex(h) for h in vector["proof"]]
    tree = MerkleTree(LEAVES[:size])
    assert tree.inclusion_proof(index) == proof
    root = bytes.fromhex(VECTORS["roots_by_size"][str(size)])
    assert verify_inclusion(LEAVES[index], index, size, proof, root)
    assert verify_inclusion_of_hash(tree.leaf_hash_at(index), index, size, proof, root)


# The iterative build is the RFC recursion.


@pytest.mark.parametrize("n", range(71))
def test_iterative_levels_with_promotion_equal_the_recursive_definition(n: int):
    leaves = [i.to_bytes(2, "big") * (i % 3) for i in range(n)]
    tree = MerkleTree(leaves)
    assert tree.root == ref_mth(leaves)
    for m in range(n):
        assert tree.inclusion_proof(m) == ref_path(m, leaves)
        assert tree.leaf_hash_at(m) == leaf_hash(leaves[m])


def test_an_odd_last_node_is_promoted_not_duplicated():
    a, b, c = b"a", b"b", b"c"
    assert merkle_root([a, b, c]) == node_hash(node_hash(leaf_hash(a), leaf_hash(b)), leaf_hash(c))
    assert merkle_root([a, b, c]) != merkle_root([a, b, c, c])


@pytest.mark.parametrize("n", range(1, 41))
def test_every_proof_verifies_for_every_index(n: int):
    leaves = [f"recording-{i}".encode() for i in range(n)]
    tree = MerkleTree(leaves)
    for m in range(n):
        proof = tree.inclusion_proof(m)
        assert len(proof) == len(ref_shape(m, n))
        assert all(len(p) == HASH_SIZE for p in proof)
        assert verify_inclusion(leaves[m], m, n, proof, tree.root)


def test_indices_outside_the_tree_raise_index_error():
    tree = MerkleTree([b"x", b"y"])
    for bad in (-1, 2, True):
        with pytest.raises(IndexError, match="index"):
            tree.inclusion_proof(bad)
        with pytest.raises(IndexError, match="index"):
            tree.leaf_hash_at(bad)


# Tampering with anything makes verification fail.


@FAST
@given(tree_and_index(), st.data())
def test_a_single_bit_flip_in_the_leaf_fails(case: tuple, data: st.DataObject):
    leaves, tree, m = case
    tampered = flip_bit(leaves[m], data.draw(st.integers(0, 8 * len(leaves[m]) - 1)))
    assert not verify_inclusion(tampered, m, tree.size, tree.inclusion_proof(m), tree.root)


@FAST
@given(tree_and_index(), st.data())
def test_a_single_bit_flip_in_any_proof_element_fails(case: tuple, data: st.DataObject):
    _, tree, m = case
    proof = tree.inclusion_proof(m)
    if not proof:
        return
    i = data.draw(st.integers(0, len(proof) - 1))
    proof[i] = flip_bit(proof[i], data.draw(st.integers(0, 8 * HASH_SIZE - 1)))
    assert not verify_inclusion_of_hash(tree.leaf_hash_at(m), m, tree.size, proof, tree.root)


@FAST
@given(tree_and_index(), st.integers(0, 8 * HASH_SIZE - 1))
def test_a_single_bit_flip_in_the_root_fails(case: tuple, bit: int):
    leaves, tree, m = case
    root = flip_bit(tree.root, bit)
    assert not verify_inclusion(leaves[m], m, tree.size, tree.inclusion_proof(m), root)


@FAST
@given(tree_and_index())
def test_the_proof_binds_the_index(case: tuple):
    leaves, tree, m = case
    proof = tree.inclusion_proof(m)
    for other in range(-1, tree.size + 2):
        if other != m:
            assert not verify_inclusion(leaves[m], other, tree.size, proof, tree.root)


@FAST
@given(tree_and_index())
def test_the_proof_binds_the_tree_size_up_to_the_shape_of_its_path(case: tuple):
    # A verifier can only check the path's shape: sizes whose audit path for this index has the
    # same shape (e.g. leaf 0 of 6 and of 7 leaves) cannot be told apart from the proof alone.
    leaves, tree, m = case
    n, proof = tree.size, tree.inclusion_proof(m)
    assert not verify_inclusion(leaves[m], m, 2 * n, proof, tree.root)
    assert not verify_inclusion(leaves[m], m, n // 2, proof, tree.root)
    for other in range(0, 2 * n + 3):
        same_shape = m < other and ref_shape(m, other) == ref_shape(m, n)
        assert verify_inclusion(leaves[m], m, other, proof, tree.root) == same_shape


@FAST
@given(tree_and_index())
def test_proofs_of_the_wrong_length_fail(case: tuple):
    leaves, tree, m = case
    proof, root, n = tree.inclusion_proof(m), tree.root, tree.size
    assert not verify_inclusion(leaves[m], m, n, [*proof, root], root)
    assert not verify_inclusion(leaves[m], m, n, [root, *proof], root)
    assert not verify_inclusion(leaves[m], m, n, [*proof, proof[-1] if proof else root], root)
    if proof:
        assert not verify_inclusion(leaves[m], m, n, proof[:-1], root)
        assert not verify_inclusion(leaves[m], m, n, proof[1:], root)


def test_malformed_input_returns_false_and_never_raises():
    leaves = LEAVES[:5]
    tree = MerkleTree(leaves)
    proof, root = tree.inclusion_proof(1), tree.root
    assert verify_inclusion(leaves[1], 1, 5, proof, root)
    bad_calls = [
        (leaves[1], 1, 5, proof, root[:-1]),  # short root
        (leaves[1], 1, 5, [*proof[:-1], proof[-1] + b"\x00"], root),  # long proof element
        (leaves[1], 1, 5, [*proof[:-1], b""], root),  # empty proof element
        (leaves[1], 1, 5, None, root),
        (leaves[1], 1, 5, b"".join(proof), root),  # a byte string is not a list of hashes
        (leaves[1], 1, 5, [*proof[:-1], "not bytes"], root),
        ("not bytes", 1, 5, proof, root),
        (leaves[1], -1, 5, proof, root),
        (leaves[1], 5, 5, proof, root),  # index >= tree_size
        (leaves[1], 1, 0, proof, root),
        (leaves[1], 1.0, 5, proof, root),
        (leaves[1], 1, 5.0, proof, root),
        (leaves[1], True, 5, proof, root),
        (leaves[1], 1, 5, proof, None),
    ]
    for args in bad_calls:
        assert verify_inclusion(*args) is False, args
    assert verify_inclusion_of_hash(tree.leaf_hash_at(1)[:-1], 1, 5, proof, root) is False
    assert verify_inclusion_of_hash(None, 1, 5, proof, root) is False


def test_a_one_leaf_tree_proves_with_an_empty_path():
    tree = MerkleTree([b"data"])
    assert tree.root == leaf_hash(b"data") == tree.leaf_hash_at(0)
    assert tree.inclusion_proof(0) == []
    assert verify_inclusion(b"data", 0, 1, [], tree.root)
    assert not verify_inclusion(b"data", 0, 1, [tree.root], tree.root)
    assert not verify_inclusion(b"data", 0, 2, [], tree.root)


def test_a_large_tree_gives_logarithmic_proofs_that_verify():
    # Speed lives in benchmarks/bench_datasets.py; here only correctness at size.
    n = 2**17 + 3
    leaves = [i.to_bytes(8, "big") for i in range(n)]
    tree = MerkleTree(leaves)
    for index in (0, 76_543, n - 1):
        proof = tree.inclusion_proof(index)
        assert len(proof) <= 18
        assert verify_inclusion(leaves[index], index, n, proof, tree.root)


# Leaves that commit without revealing (manifest format 2), and the proofs built on them.

OPERATOR = OperatorKey(Ed25519PrivateKey.generate())
HEADER = ManifestHeader(Use.TRAIN, datetime(2026, 6, 1, tzinfo=UTC), "GB")
isrcs = st.from_regex(r"GB[A-Z0-9]{3}[0-9]{7}", fullmatch=True)


def item(isrc: str) -> ManifestItem:
    """An item whose every field is its own (nothing shared with another item's fields)."""
    return ManifestItem(
        isrc=isrc,
        media_sha256=sha256(f"media {isrc}".encode()).hexdigest(),
        media_kind="midi",
        size=len(isrc) * 7,
        duration_ms=int(isrc[-7:]) + 1,
        agreements=(f"AGR-{isrc}",),
        master_owners=(f"P-M-{isrc}",),
        publishers=(f"P-P-{isrc}",),
        standing=(f"P-M-{isrc}", f"P-P-{isrc}", f"P-A-{isrc}"),
        works=(f"W-{isrc}",),
        genre=f"genre-{isrc}",
    )


def committed_manifest(members: set[str], salt: bytes) -> Manifest:
    items = tuple(item(i) for i in sorted(members))
    unrooted = Manifest(HEADER, items, (), "", salt)
    return Manifest(HEADER, items, (), unrooted.tree().root.hex(), salt)


def fields_of(manifest: Manifest, isrc: str) -> set[str]:
    """Every value an item's owner may see of it: its fields, its blind, its JSON's hash."""
    it = item(isrc)
    values = {it.isrc, it.media_sha256, it.genre, *it.agreements, *it.standing, *it.works}
    return values | {manifest.blind(isrc).hex(), sha256(it.leaf()).hexdigest()}


def test_a_leaf_is_the_keyed_isrc_hash_then_the_blinded_item_hash_as_documented():
    salt, isrc, data = b"\x07" * 32, "GBXYZ2600001", b'{"isrc":"GBXYZ2600001"}'
    key = hmac.new(salt, b"accord-isrc\x00GBXYZ2600001", "sha256").digest()
    blind = hmac.new(salt, b"accord-blind\x00GBXYZ2600001", "sha256").digest()
    assert isrc_key(salt, isrc) == key and item_blind(salt, isrc) == blind
    assert item_hash(blind, data) == sha256(b"accord-item\x00" + blind + data).digest()
    assert commitment_leaf(key, item_hash(blind, data)) == key + sha256(b"accord-item\x00" + blind + data).digest()
    assert salt_commitment(salt) == sha256(b"accord-salt\x00" + salt).digest()
    assert isrc_key(b"\x08" * 32, isrc) != key  # another salt, another key: guesses cannot be tested


@FAST
@given(
    members=st.sets(isrcs, max_size=24),
    asked=st.lists(isrcs, min_size=1, max_size=4),
    salt=st.binary(min_size=32, max_size=32),
)
def test_property_proofs_verify_for_members_and_non_members_and_reveal_no_other_item(
    members: set[str], asked: list[str], salt: bytes
):
    manifest = committed_manifest(members, salt)
    tree = manifest.tree()
    for isrc in [*sorted(members)[:4], *asked]:
        proof = json.loads(json.dumps(make_proof(manifest, tree, OPERATOR, isrc)))
        assert proof["kind"] == ("inclusion" if isrc in members else "non_inclusion")
        verdict = verify_proof(proof, manifest.root, public_key_hex=OPERATOR.public_hex, isrc=isrc)
        assert verdict.valid, verdict.checks
        text = json.dumps(proof)
        others = set().union(*(fields_of(manifest, m) for m in members if m != isrc))
        assert [v for v in others if v in text] == []
        if isrc not in members:  # a non-member's proof shows no item at all
            assert "item" not in proof and "blind" not in proof


def by_hand(proof: dict, root_hex: str, key_hex: str) -> bool:
    """docs/proofs.md §6, written from the page alone: hashlib, hmac, rfc8785 and an Ed25519 library."""
    import rfc8785
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    statement, claim, isrc = proof["statement"], proof["claim"], proof["isrc"]
    for message, block in ((statement, proof["signature"]), (claim, proof["claim_signature"])):
        if block["algorithm"] != "ed25519" or block["public_key"] != key_hex:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(
                bytes.fromhex(block["value"]), rfc8785.dumps(message)
            )
        except InvalidSignature:
            return False
    if statement["manifest_root"] != root_hex or (claim["manifest_root"], claim["isrc"]) != (root_hex, isrc):
        return False
    k, n, root = bytes.fromhex(claim["isrc_key"]), statement["tree_size"], bytes.fromhex(root_hex)

    def included(leaf: bytes, at: dict) -> bool:
        return verify_inclusion(leaf, at["leaf_index"], n, [bytes.fromhex(h) for h in at["audit_path"]], root)

    if proof["kind"] == "inclusion":
        form = dict(proof["item"])
        for name in ("agreements", "master_owners", "publishers", "standing"):
            form[name] = sorted(
                e["commitment"]
                if "commitment" in e
                else sha256(b"accord-value\x00" + bytes.fromhex(e["blind"]) + e["value"].encode()).hexdigest()
                for e in form[name]
            )
        item = sha256(b"accord-item\x00" + bytes.fromhex(proof["blind"]) + rfc8785.dumps(form)).digest()
        return form["isrc"] == isrc and included(k + item, proof)
    left, right = proof["left"], proof["right"]
    if n == 0:
        return left is None and right is None and root == sha256(b"").digest()
    sides = [(s, d) for s, d in (("left", left), ("right", right)) if d is not None]
    for side, d in sides:
        key = bytes.fromhex(d["isrc_key"])
        if not included(key + bytes.fromhex(d["item_hash"]), d) or not (key < k if side == "left" else key > k):
            return False
    if left is not None and right is not None:
        return right["leaf_index"] == left["leaf_index"] + 1
    return right["leaf_index"] == 0 if right is not None else left["leaf_index"] == n - 1


@FAST
@given(members=st.sets(isrcs, max_size=16), asked=isrcs, salt=st.binary(min_size=32, max_size=32))
def test_a_proof_checks_by_hand_exactly_as_docs_proofs_md_says(members: set[str], asked: str, salt: bytes):
    manifest = committed_manifest(members, salt)
    for isrc in [*sorted(members)[:2], asked]:
        proof = json.loads(json.dumps(make_proof(manifest, manifest.tree(), OPERATOR, isrc)))
        assert by_hand(proof, manifest.root, OPERATOR.public_hex)
        forged = {**proof, "claim": {**proof["claim"], "isrc_key": "00" * 32}}
        assert not by_hand(forged, manifest.root, OPERATOR.public_hex)
