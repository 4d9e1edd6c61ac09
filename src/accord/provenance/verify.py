"""Verifying an output's content credential, in either form: the signed sidecar or the embedded C2PA manifest.

Where both forms are at hand (the audio and its sidecar), the check also compares them field by
field and names the first field where they part: the embedded credential must be exactly what
the sidecar holds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import c2pa

from accord.errors import AccordError, NotFound, ValidationError
from accord.jsonload import load_json
from accord.provenance.certificates import DEV_COMMON_NAME
from accord.provenance.compare import first_difference
from accord.provenance.credential import (
    ACTIONS_LABELS,
    AUDIO_MIME,
    EXACT_LABEL,
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


def legacy_canonical_json(value: Any) -> bytes:
    """The canonical form sidecars were signed over before RFC 8785: ``json.dumps`` with sorted keys,
    ``,``/``:`` separators and raw UTF-8.

    It gives the same bytes as RFC 8785 except for numbers (``80.0`` and ``1e-07`` here, ``80`` and
    ``1e-7`` there) and for keys outside the Basic Multilingual Plane (sorted by code point here, by
    UTF-16 unit there): a credential whose guard has a float threshold differs.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _signed_form(credential: Mapping[str, Any], key_hex: str, value: str) -> str | None:
    """Which canonical form the signature is over: ``"RFC 8785"``, ``"legacy"`` (older sidecars), or ``None``."""
    try:
        if verify_signature(key_hex, canonical_json(credential), value):
            return "RFC 8785"
    except AccordError:  # e.g. an integer past 2**53: RFC 8785 cannot sign it; the legacy form may have
        pass
    return "legacy" if verify_signature(key_hex, legacy_canonical_json(credential), value) else None


def _compare(embedded: Mapping[str, Any], sidecar: Mapping[str, Any], *, exact: bool, audio: str) -> tuple[str, str]:
    """(problem, note), one of them empty: whether the credential embedded in ``audio`` is the sidecar's."""
    difference = first_difference(embedded, sidecar, names=("embedded", "sidecar"), float_ulps=0 if exact else 1)
    if difference is not None:
        return f"mismatch between the credential embedded in {audio} and the sidecar at {difference}", ""
    how = "exactly" if exact else "to within one unit in the last place of each float (no exact copy embedded)"
    return "", f"the credential embedded in {audio} is the sidecar's, field by field, {how}"


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
            form = _signed_form(credential, check_key, value)
            if form is not None:
                notes.append(f"Ed25519 signature valid, by {who}")
                if form == "legacy":
                    notes.append(
                        "signed over Accord's canonical form before RFC 8785 (sorted-key json.dumps, which writes "
                        "numbers differently; see docs/credentials.md)"
                    )
                if public_key_hex is None:
                    notes.append("pass the operator's public key (--public-key) to check who signed")
            else:
                problems.append("signature: the Ed25519 signature does not match the credential")
    if media is not None:
        media_problems, media_notes = _media_check(credential, media)
        problems += media_problems
        notes += media_notes
        if media.suffix.lower() in AUDIO_MIME and media.is_file():  # the audio's own copy must be this one
            embedded, exact = _check_c2pa(media, None, None, None)
            if embedded.problems != (f"c2pa: no C2PA manifest in {media.name}",):
                problems += [f"media {media.name}: {p}" for p in embedded.problems]
            if embedded.credential is not None:
                problem, note = _compare(embedded.credential, credential, exact=exact, audio=media.name)
                problems += [problem] if problem else []
                notes += [note] if note else []
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


def _exact_copy(data: Any) -> tuple[list[str], dict[str, Any] | None]:
    """(problems, credential) from the ``com.accord.credential`` assertion: RFC 8785 text and its SHA-256."""
    where = f"c2pa: {EXACT_LABEL}"
    if not isinstance(data, Mapping) or not all(isinstance(data.get(k), str) for k in ("canonical_json", "sha256")):
        return [f"{where}: not an object with the strings canonical_json and sha256"], None
    problems = []
    if data.get("format") != FORMAT:
        problems.append(f"{where}.format: {data.get('format')!r}; expected {FORMAT!r}")
    text = data["canonical_json"]
    raw = text.encode("utf-8", errors="surrogatepass")
    digest = hashlib.sha256(raw).hexdigest()
    if digest != data["sha256"]:
        problems.append(f"{where}.sha256: {data['sha256']!r}, but canonical_json hashes to {digest}")
    try:
        credential = load_json(text, what=f"{where}.canonical_json")
        canonical = canonical_json(credential)
    except AccordError as err:
        return [*problems, str(err)], None
    if canonical != raw:
        problems.append(f"{where}.canonical_json: not in RFC 8785 canonical form")
    return problems, dict(credential) if isinstance(credential, Mapping) else None


def _assertion_findings(assertions: Mapping[str, Any]) -> tuple[list[str], list[str], dict[str, Any] | None, bool]:
    """(problems, notes, credential, whether it is the exact copy) from the manifest's assertions (label → data)."""
    problems: list[str] = []
    notes: list[str] = []
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
    structured = assertions.get(GENERATION_LABEL)
    if structured is None:
        problems.append(f"c2pa: no {GENERATION_LABEL} assertion; not an Accord output credential")
        return problems, notes, None, False
    if EXACT_LABEL not in assertions:  # outputs made before the exact copy was embedded
        notes.append(
            f"no {EXACT_LABEL} assertion (an output made before it was embedded): the credential is the "
            f"structured {GENERATION_LABEL}, whose floats the C2PA library may have stored one unit in the last "
            "place off"
        )
        problems += credential_problems(structured)
        return problems, notes, dict(structured) if isinstance(structured, Mapping) else None, False
    exact_problems, credential = _exact_copy(assertions[EXACT_LABEL])
    problems += exact_problems
    if credential is None:
        return problems, notes, None, True
    difference = first_difference(credential, structured, names=(EXACT_LABEL, GENERATION_LABEL), float_ulps=1)
    if difference is not None:
        problems.append(f"c2pa: the embedded copies differ at {difference}")
    problems += credential_problems(credential)
    return problems, notes, credential, True


def _read_manifest_store(path: Path, context: Any) -> tuple[Any, Any] | str:
    """(the Reader's report, its crJSON) for ``path``, or why there are none.

    The report carries the validation results; crJSON carries the assertions as stored (the
    report turns arrays of numbers into base64 bytes: ``[11, 16]`` reads ``"CxA="``).
    """
    mime = AUDIO_MIME.get(path.suffix.lower())  # None: the library detects the format from the bytes
    try:
        with path.open("rb") as fh, c2pa.Reader(mime, fh, context=context) as reader:
            report, crjson = reader.json(), reader.crjson()
    except c2pa.C2paError.ManifestNotFound:
        return f"c2pa: no C2PA manifest in {path.name}"
    except c2pa.C2paError as err:
        return f"c2pa: {path.name} could not be read ({err})"
    try:
        return load_json(report, what=f"c2pa: {path.name} report"), load_json(crjson, what=f"c2pa: {path.name} crJSON")
    except ValidationError as err:
        return str(err)


def _check_c2pa(
    path: Path, public_key_hex: str | None, media: Path | None, trust_anchors: Path | None
) -> tuple[CredentialCheck, bool]:
    """The check of an audio file's embedded manifest, and whether its credential is the exact copy."""
    context = None
    if trust_anchors is not None:
        if not trust_anchors.is_file():
            msg = f"trust anchors: no file at {trust_anchors}"
            raise NotFound(msg)
        context = c2pa.Context.from_dict({"trust": {"trust_anchors": trust_anchors.read_text()}})
    try:
        read = _read_manifest_store(path, context)
    finally:
        if context is not None:
            context.close()
    if isinstance(read, str):
        return CredentialCheck(False, "c2pa", None, (read,)), False
    store, crjson = _obj(read[0]), _obj(read[1])
    active = str(store.get("active_manifest"))
    manifest = _obj(store.get("manifests")).get(active)
    stored = next((_obj(m) for m in _seq(crjson.get("manifests")) if _obj(m).get("label") == active), None)
    if not isinstance(manifest, Mapping) or stored is None:
        return CredentialCheck(False, "c2pa", None, (f"c2pa: {path.name} has no active manifest",)), False

    problems, notes, common_name = _signature_findings(store, manifest)
    more_problems, more_notes, credential, exact = _assertion_findings(_obj(stored.get("assertions")))
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
    return CredentialCheck(not problems, "c2pa", credential, tuple(problems), tuple(notes)), exact


def _read_sidecar(path: Path) -> tuple[bool, Any]:
    """(is a sidecar, parsed JSON or why it could not be parsed)."""
    with path.open("rb") as fh:
        head = fh.read(64).lstrip()
    if not head.startswith(b"{") and path.suffix.lower() != ".json":
        return False, None
    try:  # untrusted: bounded in size and depth, no duplicate keys, no NaN (accord.jsonload)
        return True, load_json(path.read_bytes(), what=f"sidecar {path.name}")
    except ValidationError as err:
        return True, str(err)


def sidecar_beside(audio: Path) -> Path | None:
    """The sidecar Accord writes next to an output's audio (``OUT-….wav`` → ``OUT-….credential.json``), if there."""
    candidate = audio.with_name(f"{audio.stem}.credential.json")
    return candidate if candidate != audio and candidate.is_file() else None


def _with_sidecar(
    check: CredentialCheck, exact: bool, audio: Path, sidecar: Path, public_key_hex: str | None
) -> CredentialCheck:
    """``check`` of ``audio``'s embedded manifest, plus the sidecar's own check and the comparison of the two."""
    is_sidecar, document = _read_sidecar(sidecar)
    if not is_sidecar:
        extra = (f"sidecar: {sidecar.name} is not a JSON sidecar",)
        return CredentialCheck(False, check.form, check.credential, check.problems + extra, check.notes)
    if isinstance(document, str):
        side = CredentialCheck(False, "sidecar", None, (document,))
    else:
        side = _verify_sidecar(document, public_key_hex, None)
    problems = list(check.problems) + [f"sidecar {sidecar.name}: {p}" for p in side.problems]
    notes = list(check.notes) + [f"sidecar {sidecar.name}: {n}" for n in side.notes]
    if check.credential is not None and side.credential is not None:
        problem, note = _compare(check.credential, side.credential, exact=exact, audio=audio.name)
        problems += [problem] if problem else []
        notes += [note] if note else []
    return CredentialCheck(not problems, check.form, check.credential, tuple(problems), tuple(notes))


def verify_file(
    path: Path,
    *,
    public_key_hex: str | None = None,
    media: Path | None = None,
    trust_anchors: Path | None = None,
    sidecar: Path | None = None,
) -> CredentialCheck:
    """Check a credential: a sidecar JSON, or an audio file with an embedded C2PA manifest.

    Where both forms are given (an audio file and ``sidecar``, or a sidecar and the audio as
    ``media``), each is checked and the two credentials are compared field by field, with exact
    JSON types; the first field where they differ is a problem, named by its path
    (``credential.guard.closest[0].catalog_seconds[1]``).

    Args:
        path: the sidecar (``*.credential.json``) or the audio file.
        public_key_hex: the operator's Ed25519 public key (64 hex digits or PEM) to pin a
            sidecar's signer to; without it the key in the sidecar is used and said to be unpinned.
        media: a MIDI or audio file whose SHA-256 must be one of the credential's media hashes
            (an audio file with the C2PA manifest embedded matches its pre-embedding hash, and
            its embedded credential must be the sidecar's).
        trust_anchors: a PEM file of root certificates to trust for C2PA signers (e.g. the C2PA
            trust list); without it no signer is on a trust list.
        sidecar: for an audio ``path``, its sidecar, to check and to compare with the embedded
            credential (:func:`sidecar_beside` finds the one Accord writes next to the audio).

    Raises:
        NotFound: ``path`` (or ``trust_anchors`` or ``sidecar``) does not exist. Every other fault
        is a problem in the returned check.
    """
    for what, given in (("credential", path), ("sidecar", sidecar)):
        if given is not None and not given.is_file():
            msg = f"{what}: no file at {given}"
            raise NotFound(msg)
    is_sidecar, document = _read_sidecar(path)
    if is_sidecar:
        if sidecar is not None:
            msg = f"sidecar: {path.name} is itself a sidecar; give the audio as the file and the sidecar as sidecar"
            raise ValidationError(msg, field="sidecar", value=str(sidecar))
        if isinstance(document, str):
            return CredentialCheck(False, "sidecar", None, (document,))
        return _verify_sidecar(document, public_key_hex, media)
    check, exact = _check_c2pa(path, public_key_hex, media, trust_anchors)
    if sidecar is None:
        return check
    return _with_sidecar(check, exact, path, sidecar, public_key_hex)
