"""Inclusion and non-inclusion proofs a rights holder can check with nothing but the proof and the root.

A proof file (``accord-proof/1``) carries the signed statement of the manifest (its root,
tree size, use, instant and territory), the operator's Ed25519 signature over it, and:

- for a recording **in** the manifest: its item (the leaf), the leaf's index and the
  RFC 9162 audit path from the leaf to the root;
- for a recording **not in** the manifest: its two neighbours in the sorted leaves (the
  item just before and just after it by ISRC), each with index and audit path. Adjacent
  indices whose ISRCs bracket the asked one prove nothing lies between them.

The procedure is written for re-implementers in ``docs/proofs.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord.datasets.manifest import FORMAT as MANIFEST_FORMAT
from accord.datasets.manifest import Manifest, ManifestItem
from accord.datasets.merkle import EMPTY_ROOT, MerkleTree, verify_inclusion
from accord.errors import InvalidIdentifier
from accord.identifiers import validate_isrc
from accord.licensing import parties_on
from accord.registry.entities import Catalog
from accord.signing import canonical_json, verify_signature

PROOF_FORMAT = "accord-proof/1"


def _leaf_proof(tree: MerkleTree, item: ManifestItem, index: int) -> dict[str, Any]:
    return {"leaf": item.to_dict(), "leaf_index": index, "audit_path": [h.hex() for h in tree.inclusion_proof(index)]}


def make_proof(manifest: Manifest, tree: MerkleTree, signature: Mapping[str, str], isrc: str) -> dict[str, Any]:
    """An inclusion proof if ``isrc`` is in the manifest, else a non-inclusion proof."""
    base = {
        "format": PROOF_FORMAT,
        "isrc": isrc,
        "statement": manifest.statement(),
        "signature": dict(signature),
    }
    index = manifest.index_of(isrc)
    if index is not None:
        return {**base, "kind": "inclusion", **_leaf_proof(tree, manifest.items[index], index)}
    keys = [i.isrc for i in manifest.items]
    # bisect: the first leaf whose key is greater than the asked ISRC
    lo, hi = 0, len(keys)
    while lo < hi:
        mid = (lo + hi) // 2
        if keys[mid] < isrc:
            lo = mid + 1
        else:
            hi = mid
    left = _leaf_proof(tree, manifest.items[lo - 1], lo - 1) if lo > 0 else None
    right = _leaf_proof(tree, manifest.items[lo], lo) if lo < len(keys) else None
    excluded = next((e for e in manifest.excluded if e.isrc == isrc), None)
    out = {**base, "kind": "non_inclusion", "left": left, "right": right}
    if excluded is not None:
        out["excluded_because"] = [dict(r) for r in excluded.reasons]
    return out


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one proof.

    Attributes:
        valid: every check passed.
        kind: ``inclusion`` or ``non_inclusion`` (as claimed by the file).
        isrc: the recording the proof is about.
        checks: each check made, in order, as ``(name, passed, detail)``.
    """

    valid: bool
    kind: str
    isrc: str
    checks: tuple[tuple[str, bool, str], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "kind": self.kind,
            "isrc": self.isrc,
            "checks": [{"check": n, "passed": ok, "detail": d} for n, ok, d in self.checks],
        }


def _neighbour_ok(n: Any, root: bytes, size: int) -> tuple[bool, str, str]:
    """(valid, isrc, detail) for one neighbour leaf of a non-inclusion proof."""
    try:
        leaf = canonical_json(n["leaf"])
        path = [bytes.fromhex(h) for h in n["audit_path"]]
        index, isrc = n["leaf_index"], n["leaf"]["isrc"]
    except (KeyError, TypeError, ValueError, AttributeError):
        return False, "", "malformed neighbour"
    ok = isinstance(index, int) and verify_inclusion(leaf, index, size, path, root)
    return ok, str(isrc), f"leaf {index} ({isrc})"


def _is_compact_isrc(isrc: str) -> bool:
    try:
        return validate_isrc(isrc) == isrc
    except InvalidIdentifier:
        return False


def verify_proof(
    proof: Mapping[str, Any], root_hex: str, *, public_key_hex: str | None = None, isrc: str | None = None
) -> Verdict:
    """Check a proof against a root (and, if given, the operator's pinned key and the ISRC asked about).

    Never raises: a malformed proof is an invalid one.
    """
    checks: list[tuple[str, bool, str]] = []

    def check(name: str, ok: bool, detail: str = "") -> bool:
        checks.append((name, bool(ok), detail))
        return bool(ok)

    asked = isrc
    kind, isrc = str(proof.get("kind", "")), str(proof.get("isrc", ""))
    check("recording", _is_compact_isrc(isrc), f"{isrc} is a compact ISRC")
    if asked is not None:
        check("asked", isrc == asked, f"the proof is about {isrc}, you asked about {asked}")
    statement = proof.get("statement")
    signature = proof.get("signature")
    if not isinstance(statement, Mapping) or not isinstance(signature, Mapping):
        check("shape", False, "statement and signature must be objects")
        return Verdict(False, kind, isrc, tuple(checks))
    check("format", proof.get("format") == PROOF_FORMAT and statement.get("format") == MANIFEST_FORMAT, PROOF_FORMAT)
    check("root", str(statement.get("manifest_root", "")).lower() == root_hex.lower(), "statement names the root")
    key = str(signature.get("public_key", ""))
    pinned = public_key_hex is None or key.lower() == public_key_hex.lower()
    check("signer", pinned, "pinned key" if public_key_hex else "key in the file (not pinned)")
    check(
        "signature",
        signature.get("algorithm") == "ed25519"
        and verify_signature(key, canonical_json(dict(statement)), str(signature.get("value", ""))),
        "Ed25519 over the canonical statement",
    )
    try:
        root = bytes.fromhex(root_hex)
        size = statement["tree_size"]
    except (KeyError, ValueError):
        check("tree", False, "root must be hex and the statement must give tree_size")
        return Verdict(False, kind, isrc, tuple(checks))
    if not isinstance(size, int) or size < 0:
        check("tree", False, "tree_size must be a non-negative integer")
    elif kind == "inclusion":
        ok, leaf_isrc, detail = _neighbour_ok(proof, root, size)
        check("leaf is the recording", leaf_isrc == isrc, f"leaf names {leaf_isrc}")
        check("audit path", ok, detail)
    elif kind == "non_inclusion":
        left, right = proof.get("left"), proof.get("right")
        if size == 0:
            check("empty tree", left is None and right is None and root == EMPTY_ROOT, "no leaves at all")
        else:
            li = ri = None
            if left is not None:
                ok, k, detail = _neighbour_ok(left, root, size)
                check("left neighbour", ok and k < isrc, detail)
                li = left.get("leaf_index") if isinstance(left, Mapping) else None
            if right is not None:
                ok, k, detail = _neighbour_ok(right, root, size)
                check("right neighbour", ok and k > isrc, detail)
                ri = right.get("leaf_index") if isinstance(right, Mapping) else None
            if li is not None and ri is not None:
                check("adjacent", ri == li + 1, f"leaves {li} and {ri}")
            elif ri is not None:
                check("before the first leaf", ri == 0, f"leaf {ri}")
            elif li is not None:
                check("after the last leaf", li == size - 1, f"leaf {li} of {size}")
            else:
                check("neighbours", False, "a non-empty tree needs at least one neighbour")
    else:
        check("kind", False, f"unknown proof kind {kind!r}")
    return Verdict(all(ok for _, ok, _ in checks), kind, isrc, tuple(checks))


def party_recordings(catalog: Catalog, manifest: Manifest, party: str) -> list[str]:
    """Every recording a party has standing on (owner, artist, writer, publisher), now or in the manifest."""
    held = {i.isrc for i in manifest.items if party in i.standing}
    return sorted(held | {isrc for isrc, rec in catalog.recordings.items() if party in parties_on(catalog, rec)})


def write_proofs(
    manifest: Manifest, signature: Mapping[str, str], isrcs: list[str], folder: Path
) -> list[dict[str, Any]]:
    """Write one proof file per ISRC (``<isrc>.proof.json``) and an ``index.json``; returns the index."""
    folder.mkdir(parents=True, exist_ok=True)
    tree = manifest.tree()
    index = []
    for isrc in sorted(set(isrcs)):
        proof = make_proof(manifest, tree, signature, isrc)
        name = f"{isrc}.proof.json"
        (folder / name).write_text(json.dumps(proof, indent=2, sort_keys=True))
        index.append({"isrc": isrc, "included": proof["kind"] == "inclusion", "file": name})
    (folder / "index.json").write_text(
        json.dumps({"manifest_root": manifest.root, "proofs": index}, indent=2, sort_keys=True)
    )
    return index
