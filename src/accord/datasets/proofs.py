"""Inclusion and non-inclusion proofs that reveal nothing of anyone else's recordings.

A proof file (``accord-proof/2``) carries:

- the signed **statement** of the manifest (its root, tree size, salt commitment, use,
  instant and territory) and the operator's Ed25519 signature over it;
- the signed **claim** for the asked ISRC: the manifest root, the ISRC, its keyed hash
  (``isrc_key``, :mod:`accord.datasets.merkle`) and whether it is included; the operator's
  signature over it binds the keyed hash to the ISRC (nobody else can compute it);
- for a recording **in** the manifest: its own item, the item's blinding value, the leaf
  index and the RFC 9162 audit path. Each id in the item's party and agreement lists is
  shown with its own blinding value, except a co-owner that asked not to be named (and the
  agreements it granted), shown only as a commitment;
- for a recording **not in** the manifest: the leaves just before and just after its keyed
  hash, each shown only as its commitment (``isrc_key``, ``item_hash``), with index and audit
  path. Adjacent leaves whose keyed hashes bracket the asked one prove nothing lies between.

Both signatures are checked against the operator's public key the verifier already holds,
never against the key written in the file. ``docs/proofs.md`` spells out how to check a
proof by hand.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord.datasets.disclosure import Undisclosed
from accord.datasets.manifest import FORMAT as MANIFEST_FORMAT
from accord.datasets.manifest import Manifest, ManifestItem
from accord.datasets.merkle import (
    COMMITTED_FIELDS,
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleTree,
    commitment_leaf,
    item_hash,
    salt_commitment,
    value_blind,
    value_commitment,
    verify_inclusion,
)
from accord.datasets.merkle import isrc_key as keyed_isrc
from accord.errors import AccordError, InvalidIdentifier, ValidationError
from accord.identifiers import validate_isrc
from accord.licensing import parties_on
from accord.registry.entities import Catalog
from accord.signing import OperatorKey, canonical_json, verify_signature

PROOF_FORMAT = "accord-proof/2"
CLAIM_FORMAT = "accord-proof-claim/2"
RETIRED_FORMATS = {
    "accord-proof/1": "it showed the neighbouring recordings in full, and named no key to check it by",
}
"""Proof formats no longer accepted, with why."""


def _neighbour(manifest: Manifest, tree: MerkleTree, index: int) -> dict[str, Any]:
    """A leaf shown only as its commitment: keyed ISRC hash, item hash, index and audit path."""
    return {
        "isrc_key": manifest.leaf_key(index).hex(),
        "item_hash": manifest.leaf_item_hash(index).hex(),
        "leaf_index": index,
        "audit_path": [h.hex() for h in tree.inclusion_proof(index)],
    }


def _shown_item(manifest: Manifest, item: ManifestItem, undisclosed: Undisclosed | None) -> dict[str, Any]:
    """The item as its owner sees it: each listed id with its blind, or only its commitment if hidden."""
    salt = manifest.salt or b""
    out = item.to_dict()
    for name in COMMITTED_FIELDS:
        entries = []
        for value in out[name]:
            blind = value_blind(salt, item.isrc, name, value)
            commitment = value_commitment(blind, value).hex()
            hidden = undisclosed is not None and undisclosed.hides(value)
            entries.append(
                (commitment, {"commitment": commitment} if hidden else {"value": value, "blind": blind.hex()})
            )
        out[name] = [entry for _, entry in sorted(entries, key=lambda e: e[0])]  # commitment order: as hashed
    return out


def _redacted_reasons(reasons: Any, undisclosed: Undisclosed | None) -> list[dict[str, str]]:
    if undisclosed is None:
        return [dict(r) for r in reasons]
    return [{k: undisclosed.redact(str(v)) for k, v in r.items()} for r in reasons]


def make_proof(
    manifest: Manifest, tree: MerkleTree, key: OperatorKey, isrc: str, *, undisclosed: Undisclosed | None = None
) -> dict[str, Any]:
    """An inclusion proof if ``isrc`` is in the manifest, else a non-inclusion proof, signed by ``key``.

    ``undisclosed`` (:meth:`Undisclosed.to_viewer` of the party the proof is for) names the
    co-owners shown only as commitments, and blanked out of ``excluded_because``.

    Raises:
        ValidationError: the manifest is of format 1 (its leaves would show neighbours).
    """
    if manifest.salt is None:
        msg = (
            f"manifest {manifest.root}: format {manifest.format} cannot be proven without showing other "
            f"recordings; rebuild the training set (accord dataset build) for a {MANIFEST_FORMAT} manifest"
        )
        raise ValidationError(msg, field="manifest", value=manifest.root)
    asked = manifest.isrc_key(isrc)
    index, position = manifest.leaf_index_of(isrc), manifest.index_of(isrc)
    kind = "inclusion" if index is not None and position is not None else "non_inclusion"
    statement = manifest.statement()
    claim = {
        "format": CLAIM_FORMAT,
        "manifest_root": manifest.root,
        "isrc": isrc,
        "isrc_key": asked.hex(),
        "kind": kind,
    }
    base = {
        "format": PROOF_FORMAT,
        "kind": kind,
        "isrc": isrc,
        "statement": statement,
        "signature": key.signature_block(statement),
        "claim": claim,
        "claim_signature": key.signature_block(claim),
    }
    if index is not None and position is not None:
        return {
            **base,
            "item": _shown_item(manifest, manifest.items[position], undisclosed),
            "blind": manifest.blind(isrc).hex(),
            "leaf_index": index,
            "audit_path": [h.hex() for h in tree.inclusion_proof(index)],
        }
    after = manifest.first_leaf_after(asked)  # no leaf has this key: the first one above it
    out: dict[str, Any] = {
        **base,
        "left": _neighbour(manifest, tree, after - 1) if after > 0 else None,
        "right": _neighbour(manifest, tree, after) if after < len(manifest.items) else None,
    }
    excluded = next((e for e in manifest.excluded if e.isrc == isrc), None)
    if excluded is not None:  # the asker's own recording: why the policy left it out
        out["excluded_because"] = _redacted_reasons(excluded.reasons, undisclosed)
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


def _hash(value: object) -> bytes | None:
    """32 bytes from a 64-digit lower-case hex string, else ``None``."""
    if not isinstance(value, str) or len(value) != 2 * HASH_SIZE or value != value.lower():
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def _path(value: object) -> list[bytes] | None:
    if not isinstance(value, list):
        return None
    out = [_hash(h) for h in value]
    return None if any(h is None for h in out) else [h for h in out if h is not None]


def _index(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _leaf_ok(
    key: bytes, committed: bytes | None, index: int | None, path: list[bytes] | None, root: bytes, size: int
) -> bool:
    if committed is None or index is None or path is None:
        return False
    return verify_inclusion(commitment_leaf(key, committed), index, size, path, root)


def _neighbour_ok(n: object, root: bytes, size: int) -> tuple[bool, bytes | None, int | None, str]:
    """(verified, keyed hash, index, detail) of one neighbour of a non-inclusion proof."""
    if not isinstance(n, Mapping) or set(n) != {"isrc_key", "item_hash", "leaf_index", "audit_path"}:
        return False, None, None, "a neighbour is isrc_key, item_hash, leaf_index and audit_path, nothing else"
    key, index = _hash(n["isrc_key"]), _index(n["leaf_index"])
    if key is None:
        return False, None, index, "isrc_key is not 64 hex digits"
    ok = _leaf_ok(key, _hash(n["item_hash"]), index, _path(n["audit_path"]), root, size)
    return ok, key, index, f"leaf {index}"


def _is_compact_isrc(isrc: str) -> bool:
    try:
        return validate_isrc(isrc) == isrc
    except InvalidIdentifier:
        return False


def _signed_by(block: object, message: Mapping[str, Any], pinned: bytes | None) -> tuple[bool, str]:
    """Whether ``block`` is an Ed25519 signature of ``message`` by the pinned key (never the file's key)."""
    if pinned is None:
        return False, "no operator key to check against (give the operator's public key)"
    if not isinstance(block, Mapping) or block.get("algorithm") != "ed25519":
        return False, "an ed25519 signature block"
    if str(block.get("public_key", "")).lower() != pinned.hex():
        return False, "signed by another key than the operator's"
    try:
        message_bytes = canonical_json(dict(message))
    except AccordError:
        return False, "not canonical JSON"
    ok = verify_signature(pinned.hex(), message_bytes, str(block.get("value", "")))
    return ok, "Ed25519 by the operator's key over the RFC 8785 canonical JSON"


def verify_proof(
    proof: Mapping[str, Any],
    root_hex: str,
    *,
    public_key_hex: str,
    isrc: str | None = None,
    salt_hex: str | None = None,
) -> Verdict:
    """Check a proof against a root and the operator's public key (and, if given, the ISRC asked about).

    ``public_key_hex`` is required: a signature is trusted only against the key the verifier
    already holds. ``salt_hex`` is for an auditor the operator has given the manifest's salt:
    it must open the statement's salt commitment and give the claimed keyed hash.
    Never raises: a malformed proof is an invalid one.
    """
    checks: list[tuple[str, bool, str]] = []

    def check(name: str, ok: bool, detail: str = "") -> bool:
        checks.append((name, bool(ok), detail))
        return bool(ok)

    if not isinstance(proof, Mapping):
        check("shape", False, "a proof is a JSON object")
        return Verdict(False, "", "", tuple(checks))
    kind, isrc_in_file = str(proof.get("kind", "")), str(proof.get("isrc", ""))
    fmt = proof.get("format")
    if isinstance(fmt, str) and fmt in RETIRED_FORMATS:
        why = RETIRED_FORMATS[fmt]
        check("format", False, f"{fmt} is no longer accepted ({why}); ask the operator for a new {PROOF_FORMAT} proof")
        return Verdict(False, kind, isrc_in_file, tuple(checks))
    check("recording", _is_compact_isrc(isrc_in_file), f"{isrc_in_file} is a compact ISRC")
    if isrc is not None:
        check("asked", isrc_in_file == isrc, f"the proof is about {isrc_in_file}, you asked about {isrc}")
    statement, claim = proof.get("statement"), proof.get("claim")
    if not isinstance(statement, Mapping) or not isinstance(claim, Mapping):
        check("shape", False, "statement and claim must be objects")
        return Verdict(False, kind, isrc_in_file, tuple(checks))
    check(
        "format",
        fmt == PROOF_FORMAT and statement.get("format") == MANIFEST_FORMAT and claim.get("format") == CLAIM_FORMAT,
        f"{PROOF_FORMAT} over a {MANIFEST_FORMAT} statement",
    )
    root, pinned = _hash(str(root_hex).lower()), _hash(str(public_key_hex).lower())
    check("operator key", pinned is not None, "the operator's Ed25519 public key, 64 hex digits")
    check("root", root is not None and statement.get("manifest_root") == root_hex.lower(), "statement names the root")
    check("statement signature", *_signed_by(proof.get("signature"), statement, pinned))
    check("claim signature", *_signed_by(proof.get("claim_signature"), claim, pinned))
    asked = _hash(claim.get("isrc_key"))
    check(
        "claim",
        claim.get("manifest_root") == statement.get("manifest_root")
        and claim.get("isrc") == isrc_in_file
        and claim.get("kind") == kind
        and asked is not None,
        "the signed claim names this root, recording and kind, and a keyed hash",
    )
    if salt_hex is not None:
        try:
            salt = bytes.fromhex(salt_hex)
        except ValueError:
            salt = b""
        opens = salt_commitment(salt).hex() == statement.get("salt_commitment") if salt else False
        check("salt", opens, "the salt opens the statement's salt commitment")
        honest = (
            opens
            and asked is not None
            and _is_compact_isrc(isrc_in_file)
            and hmac.compare_digest(keyed_isrc(salt, isrc_in_file), asked)
        )
        check("keyed hash", honest, "the claimed keyed hash is the ISRC's under this salt")
    size = _index(statement.get("tree_size"))
    if root is None or asked is None or size is None:
        check("tree", False, "a hex root, a keyed hash and a non-negative tree_size are needed")
        return Verdict(False, kind, isrc_in_file, tuple(checks))
    if kind == "inclusion":
        _check_inclusion(proof, isrc_in_file, asked, root, size, check)
    elif kind == "non_inclusion":
        _check_non_inclusion(proof, asked, root, size, check)
    else:
        check("kind", False, f"unknown proof kind {kind!r}")
    return Verdict(all(ok for _, ok, _ in checks), kind, isrc_in_file, tuple(checks))


def _check_inclusion(proof: Mapping[str, Any], isrc: str, key: bytes, root: bytes, size: int, check: Any) -> None:
    item, blind = proof.get("item"), _hash(proof.get("blind"))
    if not isinstance(item, Mapping) or blind is None:
        check("item", False, "the item (an object) and its blind (64 hex digits)")
        return
    check("item is the recording", item.get("isrc") == isrc, f"item names {item.get('isrc')}")
    form = _committed_form(item, isrc)
    if form is None:
        check("item", False, f"each of {', '.join(COMMITTED_FIELDS)} lists {{value, blind}} or {{commitment}}")
        return
    try:
        committed = item_hash(blind, canonical_json(form))
    except AccordError:
        check("item", False, "the item is not canonical JSON")
        return
    index = _index(proof.get("leaf_index"))
    ok = _leaf_ok(key, committed, index, _path(proof.get("audit_path")), root, size)
    check("audit path", ok, f"leaf {index}: keyed hash || item hash, up to the root")


def _committed_form(item: Mapping[str, Any], isrc: str) -> dict[str, Any] | None:
    """The committed form of a shown item (each listed id's commitment, sorted); ``None`` if malformed."""
    out = dict(item)
    for name in COMMITTED_FIELDS:
        entries = item.get(name)
        if not isinstance(entries, list):
            return None
        commitments = []
        for entry in entries:
            if isinstance(entry, Mapping) and set(entry) == {"commitment"} and _hash(entry["commitment"]):
                commitments.append(entry["commitment"])
            elif isinstance(entry, Mapping) and set(entry) == {"value", "blind"} and isinstance(entry["value"], str):
                blind = _hash(entry["blind"])
                try:
                    commitment = value_commitment(blind, entry["value"]) if blind is not None else None
                except UnicodeEncodeError:  # a lone surrogate: no id is one
                    commitment = None
                if commitment is None:
                    return None
                commitments.append(commitment.hex())
            else:
                return None
        out[name] = sorted(commitments)
    return out


def _check_non_inclusion(proof: Mapping[str, Any], key: bytes, root: bytes, size: int, check: Any) -> None:
    left, right = proof.get("left"), proof.get("right")
    if size == 0:
        check("empty tree", left is None and right is None and root == EMPTY_ROOT, "no leaves at all")
        return
    li = ri = None
    if left is not None:
        ok, k, li, detail = _neighbour_ok(left, root, size)
        check("left neighbour", ok and k is not None and k < key, f"{detail}, keyed hash below the asked one")
    if right is not None:
        ok, k, ri, detail = _neighbour_ok(right, root, size)
        check("right neighbour", ok and k is not None and k > key, f"{detail}, keyed hash above the asked one")
    if left is not None and right is not None:
        check("adjacent", li is not None and ri == li + 1, f"leaves {li} and {ri}")
    elif right is not None:
        check("before the first leaf", ri == 0, f"leaf {ri}")
    elif left is not None:
        check("after the last leaf", li == size - 1, f"leaf {li} of {size}")
    else:
        check("neighbours", False, "a non-empty tree needs at least one neighbour")


def party_recordings(catalog: Catalog, manifest: Manifest, party: str) -> list[str]:
    """Every recording a party has standing on (owner, artist, writer, publisher), now or in the manifest."""
    held = {i.isrc for i in manifest.items if party in i.standing}
    return sorted(held | {isrc for isrc, rec in catalog.recordings.items() if party in parties_on(catalog, rec)})


def write_proofs(
    manifest: Manifest, key: OperatorKey, isrcs: list[str], folder: Path, *, undisclosed: Undisclosed | None = None
) -> list[dict[str, Any]]:
    """Write one proof file per ISRC (``<isrc>.proof.json``) and an ``index.json``; returns the index."""
    folder.mkdir(parents=True, exist_ok=True)
    tree = manifest.tree()
    index = []
    for isrc in sorted(set(isrcs)):
        proof = make_proof(manifest, tree, key, isrc, undisclosed=undisclosed)
        name = f"{isrc}.proof.json"
        (folder / name).write_text(json.dumps(proof, indent=2, sort_keys=True))
        index.append({"isrc": isrc, "included": proof["kind"] == "inclusion", "file": name})
    (folder / "index.json").write_text(
        json.dumps({"manifest_root": manifest.root, "proofs": index}, indent=2, sort_keys=True)
    )
    return index
