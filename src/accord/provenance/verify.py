"""Verifying an output's content credential, in either form: the signed sidecar or the embedded C2PA manifest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import c2pa

from accord.errors import AccordError, NotFound
from accord.provenance.certificates import DEV_COMMON_NAME
from accord.provenance.credential import (
    ACTIONS_LABELS,
    AUDIO_MIME,
    FORMAT,
    GENERATION_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    TRAINING_MINING_LABEL,
    UNTRUSTED,
    CredentialCheck,
    _sha256_file,
    credential_problems,
    wav_without_c2pa,
)
from accord.signing import ALGORITHM, canonical_json, parse_public_key, verify_signature


def _media_check(credential: Any, media: Path) -> tuple[list[str], list[str]]:
    """(problems, notes) from comparing ``media``'s SHA-256 with the credential's media hashes."""
    if not media.is_file():
        return [f"media: no file at {media}"], []
    hashes = credential.get("media_sha256") if isinstance(credential, Mapping) else None
    if not isinstance(hashes, Mapping) or not hashes:
        return [f"media: the credential names no media hashes to compare {media.name} with"], []
    digest = _sha256_file(media)
    for kind, expected in sorted(hashes.items()):
        if digest == expected:
            return [], [f"media: {media.name} is the credential's {kind} (sha256 {digest})"]
    stripped = wav_without_c2pa(media.read_bytes())
    if stripped is not None:
        inner = hashlib.sha256(stripped).hexdigest()
        for kind, expected in sorted(hashes.items()):
            if inner == expected:
                return [], [f"media: {media.name} less its embedded C2PA manifest is the credential's {kind}"]
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(hashes.items()))
    return [f"media: {media.name} has sha256 {digest}, which matches none of the credential's ({kinds})"], []


def _verify_sidecar(document: Any, public_key_hex: str | None, media: Path | None) -> CredentialCheck:
    problems: list[str] = []
    notes: list[str] = []
    if not isinstance(document, Mapping):
        return CredentialCheck(False, "sidecar", None, ("sidecar: the JSON is not an object",))
    if document.get("format") != FORMAT:
        problems.append(f"format: {document.get('format')!r}; expected {FORMAT!r}")
    credential, signature = document.get("credential"), document.get("signature")
    if not isinstance(credential, Mapping):
        problems.append("credential: missing or not an object")
        return CredentialCheck(False, "sidecar", None, tuple(problems))
    credential = dict(credential)
    problems += credential_problems(credential)
    if not isinstance(signature, Mapping):
        problems.append("signature: missing or not an object")
    else:
        algorithm, key, value = signature.get("algorithm"), signature.get("public_key"), signature.get("value")
        if algorithm != ALGORITHM:
            problems.append(f"signature.algorithm: {algorithm!r}; expected {ALGORITHM!r}")
        if not isinstance(key, str) or not isinstance(value, str):
            problems.append("signature: public_key and value must be hex strings")
        else:
            check_key, who = key.lower(), f"key {key} (not pinned)"
            if public_key_hex is not None:
                try:
                    pinned: str | None = parse_public_key(public_key_hex)
                except AccordError as err:
                    pinned = None
                    problems.append(f"pinned key: {err}")
                if pinned is not None:
                    if pinned != check_key:
                        problems.append(f"signature: signed by key {key}, not the pinned operator key {pinned}")
                    check_key, who = pinned, "the pinned operator key"
            if verify_signature(check_key, canonical_json(credential), value):
                notes.append(f"Ed25519 signature valid, by {who}")
                if public_key_hex is None:
                    notes.append("pass the operator's public key (--public-key) to check who signed")
            else:
                problems.append("signature: the Ed25519 signature does not match the credential")
    if media is not None:
        media_problems, media_notes = _media_check(credential, media)
        problems += media_problems
        notes += media_notes
    return CredentialCheck(not problems, "sidecar", credential, tuple(problems), tuple(notes))


def _obj(value: Any) -> Mapping[str, Any]:
    """``value`` if it is an object, else an empty one: assertion data is whatever the signer wrote."""
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _failures(store: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every failure status in a Reader report: the active manifest's and its ingredients'."""
    results = store.get("validation_results")
    if isinstance(results, Mapping):
        out = _seq(_obj(results.get("activeManifest")).get("failure"))
        for delta in _seq(results.get("ingredientDeltas")):
            out += _seq(_obj(_obj(delta).get("validationDeltas")).get("failure"))
    else:
        out = _seq(store.get("validation_status"))  # older reports carry only this list
    return [_obj(f) for f in out]


def _signature_findings(store: Mapping[str, Any], manifest: Mapping[str, Any]) -> tuple[list[str], list[str], str]:
    """(problems, notes, signer common name) from the library's validation of the manifest store."""
    problems: list[str] = []
    notes: list[str] = []
    state = store.get("validation_state")
    failures = _failures(store)
    untrusted = any(f.get("code") == UNTRUSTED for f in failures)
    problems += [f"c2pa: {f.get('code')}: {f.get('explanation', '')}" for f in failures if f.get("code") != UNTRUSTED]
    if state not in ("Valid", "Trusted") and not problems:
        problems.append(f"c2pa: validation state {state!r}; expected 'Valid' or 'Trusted'")
    signer = _obj(manifest.get("signature_info"))
    common_name = str(signer.get("common_name") or signer.get("issuer") or "unknown signer")
    if not problems:
        if state == "Trusted":
            notes.append(f"signature valid, signer {common_name} on the verifier's trust list")
        elif untrusted and common_name == DEV_COMMON_NAME:
            notes.append("signature valid, signer not on a trust list (development chain)")
        elif untrusted:
            notes.append(f"signature valid, signer {common_name} not on the verifier's trust list")
        else:
            notes.append(f"signature valid, signed by {common_name}")
    if not signer.get("time"):
        notes.append("no trusted time-stamp: the signing time is not attested")
    return problems, notes, common_name


def _assertion_findings(manifest: Mapping[str, Any]) -> tuple[list[str], list[str], dict[str, Any] | None]:
    """(problems, notes, credential) from the manifest's assertions: AI marking, TDM, generation."""
    problems: list[str] = []
    notes: list[str] = []
    assertions = {_obj(a).get("label"): _obj(a).get("data") for a in _seq(manifest.get("assertions"))}
    actions = [_obj(a) for label in ACTIONS_LABELS for a in _seq(_obj(assertions.get(label)).get("actions"))]
    if any(
        a.get("action") == "c2pa.created" and a.get("digitalSourceType") == TRAINED_ALGORITHMIC_MEDIA for a in actions
    ):
        notes.append("marked AI-generated: c2pa.created, digital source type trainedAlgorithmicMedia")
    else:
        problems.append("c2pa: no c2pa.created action with digital source type trainedAlgorithmicMedia")
    entries = _obj(_obj(assertions.get(TRAINING_MINING_LABEL)).get("entries"))
    if entries:
        uses = ", ".join(f"{name} {_obj(v).get('use')}" for name, v in sorted(entries.items()))
        notes.append(f"training and data mining: {uses}")
    else:
        problems.append(f"c2pa: no {TRAINING_MINING_LABEL} assertion")
    credential = assertions.get(GENERATION_LABEL)
    if credential is None:
        problems.append(f"c2pa: no {GENERATION_LABEL} assertion; not an Accord output credential")
        return problems, notes, None
    problems += credential_problems(credential)
    return problems, notes, dict(credential) if isinstance(credential, Mapping) else None


def _verify_c2pa(
    path: Path, public_key_hex: str | None, media: Path | None, trust_anchors: Path | None
) -> CredentialCheck:
    mime = AUDIO_MIME.get(path.suffix.lower())  # None: the library detects the format from the bytes
    context = None
    if trust_anchors is not None:
        if not trust_anchors.is_file():
            msg = f"trust anchors: no file at {trust_anchors}"
            raise NotFound(msg)
        context = c2pa.Context.from_dict({"trust": {"trust_anchors": trust_anchors.read_text()}})
    try:
        with path.open("rb") as fh, c2pa.Reader(mime, fh, context=context) as reader:
            store = json.loads(reader.json())
    except c2pa.C2paError.ManifestNotFound:
        return CredentialCheck(False, "c2pa", None, (f"c2pa: no C2PA manifest in {path.name}",))
    except c2pa.C2paError as err:
        return CredentialCheck(False, "c2pa", None, (f"c2pa: {path.name} could not be read ({err})",))
    finally:
        if context is not None:
            context.close()
    manifest = _obj(store).get("manifests")
    manifest = _obj(manifest).get(str(store.get("active_manifest")))
    if not isinstance(manifest, Mapping):
        return CredentialCheck(False, "c2pa", None, (f"c2pa: {path.name} has no active manifest",))

    problems, notes, common_name = _signature_findings(store, manifest)
    more_problems, more_notes, credential = _assertion_findings(manifest)
    problems += more_problems
    notes += more_notes
    if public_key_hex is not None:
        notes.append(
            "the pinned Ed25519 key checks sidecars; a C2PA manifest is signed by its X.509 certificate "
            f"({common_name}) and checked against trust anchors"
        )
    if media is not None and credential is not None:
        media_problems, media_notes = _media_check(credential, media)
        problems += media_problems
        notes += media_notes
    return CredentialCheck(not problems, "c2pa", credential, tuple(problems), tuple(notes))


def _read_sidecar(path: Path) -> tuple[bool, Any]:
    """(is a sidecar, parsed JSON or the parse error message)."""
    with path.open("rb") as fh:
        head = fh.read(64).lstrip()
    if not head.startswith(b"{") and path.suffix.lower() != ".json":
        return False, None
    try:
        return True, json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return True, f"sidecar: {path.name} is not valid JSON ({err})"


def verify_file(
    path: Path,
    *,
    public_key_hex: str | None = None,
    media: Path | None = None,
    trust_anchors: Path | None = None,
) -> CredentialCheck:
    """Check a credential: a sidecar JSON, or an audio file with an embedded C2PA manifest.

    Args:
        path: the sidecar (``*.credential.json``) or the audio file.
        public_key_hex: the operator's Ed25519 public key (64 hex digits or PEM) to pin a
            sidecar's signer to; without it the key in the sidecar is used and said to be unpinned.
        media: a MIDI or audio file whose SHA-256 must be one of the credential's media hashes
            (an audio file with the C2PA manifest embedded matches its pre-embedding hash).
        trust_anchors: a PEM file of root certificates to trust for C2PA signers (e.g. the C2PA
            trust list); without it no signer is on a trust list.

    Raises:
        NotFound: ``path`` (or ``trust_anchors``) does not exist. Every other fault is a problem
        in the returned check.
    """
    if not path.is_file():
        msg = f"credential: no file at {path}"
        raise NotFound(msg)
    is_sidecar, document = _read_sidecar(path)
    if is_sidecar:
        if isinstance(document, str):
            return CredentialCheck(False, "sidecar", None, (document,))
        return _verify_sidecar(document, public_key_hex, media)
    return _verify_c2pa(path, public_key_hex, media, trust_anchors)
