"""An output's content credential, in two forms, and the one check for both.

A :class:`Credential` says what made an output: the model, the root of the consented
training manifest it was trained on, the prompt and seed, when, by which Accord, what the
replication guard and attribution found (``{"status": "pending"}`` until they exist — never
invented values), and the SHA-256 of the MIDI and of the audio as rendered. Being public, it
carries their public form (:mod:`accord.attribution.disclosure`): a party that asked not to be
named, and the recordings and works it is on, appear only as commitments; the full attribution
stays in the output's private record.

It travels in two forms:

- a **sidecar** (``accord-credential/1``): the credential and the operator's Ed25519 signature
  over its canonical JSON (:func:`write_sidecar`);
- a **C2PA manifest** embedded in the audio (:func:`embed_c2pa`), signed with an X.509 chain
  (:mod:`accord.provenance.certificates`): the ``c2pa.created`` action marked
  ``trainedAlgorithmicMedia`` (AI-generated), a CAWG training-and-data-mining assertion saying
  ``notAllowed`` to every use, ``com.accord.generation`` carrying the credential as structured
  data (what a C2PA viewer shows), and ``com.accord.credential`` carrying its exact RFC 8785
  canonical JSON and that text's SHA-256.

The exact copy exists because the structured one is not exact: the C2PA library parses the
manifest definition's decimal numbers with a fast float parser that is off by one unit in the
last place for about one float in ten, and its ``Reader.json()`` report turns every array of
numbers into base64 bytes (``[11, 16]`` reads back as ``"CxA="``). The exact copy is the
embedded credential; verification checks it against the structured one and against the sidecar.

A credential's values are held as their RFC 8785 reading (the JSON a verifier in any language
decodes from the signed bytes): ``3.0`` is held as ``3``, a tuple as a list. So the sidecar, the
embedded copy and the stored output all hold the same document, value for value and type for type.

:func:`accord.provenance.verify.verify_file` takes either form and reports problems as values.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import c2pa

from accord import __version__
from accord.errors import AccordError, NotFound, ValidationError
from accord.provenance.certificates import CertChain
from accord.signing import OperatorKey, canonical_json
from accord.timeutil import parse_instant

FORMAT = "accord-credential/1"

GENERATION_LABEL = "com.accord.generation"
EXACT_LABEL = "com.accord.credential"
TRAINING_MINING_LABEL = "cawg.training-mining"
TRAINING_MINING_ENTRIES = ("cawg.ai_generative_training", "cawg.ai_training", "cawg.ai_inference", "cawg.data_mining")
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
ACTIONS_LABELS = ("c2pa.actions", "c2pa.actions.v2")

# the C2PA validation code for a signer that chains to no trust anchor the verifier holds
UNTRUSTED = "signingCredential.untrusted"

AUDIO_MIME = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".m4a": "audio/mp4"}

_HEX64 = re.compile(r"[0-9a-f]{64}")
_FIELDS = (
    "output_id",
    "model_id",
    "manifest_root",
    "prompt",
    "seed",
    "created",
    "generator",
    "guard",
    "attribution",
    "media_sha256",
)


def credential_problems(data: Any) -> list[str]:
    """Every way ``data`` fails to be a credential's dict, as messages (empty: it is one)."""
    if not isinstance(data, Mapping):
        return [f"credential: {type(data).__name__} is not an object"]
    problems = [f"credential.{name}: missing" for name in _FIELDS if name not in data]
    problems += [f"credential.{name}: unexpected field" for name in sorted(set(data) - set(_FIELDS))]
    for name in ("output_id", "model_id", "manifest_root", "generator", "created"):
        if name in data and (not isinstance(data[name], str) or not data[name]):
            problems.append(f"credential.{name}: {data[name]!r} is not a non-empty string")
    if isinstance(data.get("created"), str) and data["created"]:
        try:
            parse_instant(data["created"], field="created")
        except ValidationError:
            problems.append(f"credential.created: {data['created']!r} is not an ISO 8601 instant with an offset")
    if "seed" in data and (not isinstance(data["seed"], int) or isinstance(data["seed"], bool)):
        problems.append(f"credential.seed: {data['seed']!r} is not an integer")
    if "prompt" in data and not isinstance(data["prompt"], Mapping):
        problems.append(f"credential.prompt: {data['prompt']!r} is not an object")
    for name in ("guard", "attribution"):
        if name in data:
            value = data[name]
            if not isinstance(value, Mapping) or not isinstance(value.get("status"), str) or not value["status"]:
                problems.append(f"credential.{name}: {value!r} is not an object with a status")
            elif name == "attribution":  # a computed attribution must hold to the royalty engine's contract
                from accord.attribution.contract import attribution_problems

                problems += attribution_problems(value)
    if isinstance(data.get("guard"), Mapping) and isinstance(data["guard"].get("status"), str):
        problems += guard_problems(data["guard"])
    if "media_sha256" in data:
        hashes = data["media_sha256"]
        if not isinstance(hashes, Mapping) or not hashes:
            problems.append(f"credential.media_sha256: {hashes!r} is not an object of kind → SHA-256")
        else:
            for kind, digest in hashes.items():
                if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
                    problems.append(f"credential.media_sha256.{kind}: {digest!r} is not 64 lower-case hex digits")
    return problems


GUARD_STATUSES = ("clear", "pending")
"""A released output's guard verdict: ``clear`` (computed, with its evidence) or ``pending``.

``pending`` is only for outputs released before the replication guard existed (Accord before
the guard issue); every output generated since carries a computed ``clear`` verdict. A
``blocked`` verdict never appears in a credential: a blocked output is not released.
"""


def guard_problems(guard: Mapping[str, Any]) -> list[str]:
    """Every way a credential's ``guard`` record fails (its status is already known to be a string)."""
    status = guard["status"]
    if status not in GUARD_STATUSES:
        return [f"credential.guard.status: {status!r} is not one of {', '.join(GUARD_STATUSES)}"]
    if status == "pending":
        return []
    problems = []
    for key in ("policy_version",):
        if not isinstance(guard.get(key), str) or not guard[key]:
            problems.append(f"credential.guard.{key}: {guard.get(key)!r} is not a non-empty string")
    for key in ("threshold", "audio_threshold"):
        value = guard.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            problems.append(f"credential.guard.{key}: {value!r} is not a positive number")
    checks = guard.get("checks")
    if not isinstance(checks, list) or not checks or not set(checks) <= {"symbolic", "audio"}:
        problems.append(f"credential.guard.checks: {checks!r} is not a non-empty list of 'symbolic'/'audio'")
    closest = guard.get("closest")
    if not isinstance(closest, list):
        problems.append(f"credential.guard.closest: {closest!r} is not a list of evidence")
    else:
        for i, item in enumerate(closest):
            # a hidden recording's evidence names it by commitment only (accord.attribution.disclosure)
            ok = isinstance(item, Mapping) and all(k in item for k in ("check", "score", "threshold"))
            ok = ok and (isinstance(item.get("isrc"), str) or bool(_HEX64.fullmatch(str(item.get("commitment", "")))))
            if not ok:
                problems.append(
                    f"credential.guard.closest[{i}]: {item!r} lacks isrc (or commitment), check, score or threshold"
                )
            elif item.get("over_threshold"):
                named = item.get("isrc", item.get("commitment"))
                problems.append(f"credential.guard.closest[{i}]: {named} is over its threshold, yet 'clear'")
    return problems


@dataclass(frozen=True)
class Credential:
    """What made one output: the content of its credential, whichever form carries it.

    Attributes:
        output_id: the output's id.
        model_id: the model that generated it.
        manifest_root: the Merkle root (hex) of the training manifest the model was trained on.
        prompt: the prompt, as given (style, key, tempo ...).
        seed: the sampling seed.
        created: when it was generated, ISO 8601 UTC (``2026-11-01T12:00:00Z``).
        generator: the software, ``"Accord <version>"``.
        guard: what the replication guard found; ``{"status": "pending", ...}`` until it exists.
        attribution: what attribution found; ``{"status": "pending", ...}`` until it exists.
        media_sha256: kind → SHA-256 hex: ``midi``, and ``audio`` as rendered, before any
            C2PA manifest was embedded in it.
    """

    output_id: str
    model_id: str
    manifest_root: str
    prompt: dict[str, Any]
    seed: int
    created: str
    generator: str
    guard: dict[str, Any]
    attribution: dict[str, Any]
    media_sha256: dict[str, str]

    def __post_init__(self) -> None:
        problems = credential_problems(self.to_dict())
        if problems:
            msg = f"credential for {self.output_id!r}: " + "; ".join(problems)
            raise ValidationError(msg, field="credential", value=self.output_id)
        for name in _FIELDS:  # hold each value as a verifier decodes it from the signed bytes
            try:
                value = json.loads(canonical_json(getattr(self, name)))
            except AccordError as err:
                msg = f"credential.{name}: {err}; expected a JSON value that RFC 8785 can canonicalise"
                raise ValidationError(msg, field=f"credential.{name}", value=self.output_id) from None
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """The credential as JSON-ready data (a deep copy: changing it changes nothing here)."""
        return copy.deepcopy({name: getattr(self, name) for name in _FIELDS})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Credential:
        problems = credential_problems(data)
        if problems:
            msg = "credential: " + "; ".join(problems)
            raise ValidationError(msg, field="credential", value=str(data.get("output_id", "")))
        return cls(**{name: copy.deepcopy(data[name]) for name in _FIELDS})


@dataclass(frozen=True)
class CredentialCheck:
    """The outcome of checking one credential file.

    Attributes:
        valid: no problem was found.
        form: ``sidecar`` (signed JSON) or ``c2pa`` (manifest embedded in the audio).
        credential: the credential's content as found, or ``None`` where none could be read.
        problems: every reason it fails, in the order found; empty when valid.
        notes: what was checked and how far it can be trusted (signer, trust list, time-stamp).
    """

    valid: bool
    form: str
    credential: dict[str, Any] | None
    problems: tuple[str, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "form": self.form,
            "credential": self.credential,
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wav_without_c2pa(data: bytes) -> bytes | None:
    """The WAV bytes with their ``C2PA`` RIFF chunk taken out, or ``None`` if not a WAV with one.

    C2PA embeds its manifest store in WAV as one extra RIFF chunk; dropping it (and fixing the
    RIFF size) gives back the audio as it was before embedding.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    chunks, pos, found = [], 12, False
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        end = pos + 8 + size + (size & 1)  # RIFF chunks are padded to an even length
        if data[pos : pos + 4] == b"C2PA":
            found = True
        else:
            chunks.append(data[pos:end])
        pos = end
    if not found:
        return None
    body = b"".join(chunks)
    return b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WAVE" + body


def write_sidecar(credential: Credential, path: Path, key: OperatorKey) -> Path:
    """Write the signed sidecar (``accord-credential/1``) for ``credential`` at ``path``; return ``path``."""
    data = credential.to_dict()
    document = {"format": FORMAT, "credential": data, "signature": key.signature_block(data)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def exact_assertion(credential: Credential) -> dict[str, str]:
    """The ``com.accord.credential`` assertion's data: the credential's RFC 8785 text and its SHA-256."""
    text = canonical_json(credential.to_dict())
    return {"format": FORMAT, "canonical_json": text.decode("utf-8"), "sha256": hashlib.sha256(text).hexdigest()}


def manifest_definition(credential: Credential, title: str, mime: str) -> dict[str, Any]:
    """The C2PA manifest definition (c2pa-python ``Builder`` JSON) for an output's audio."""
    return {
        "claim_generator_info": [{"name": "Accord", "version": __version__}],
        "title": title,
        "format": mime,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": "Accord", "version": __version__},
                            "when": credential.created,
                        }
                    ]
                },
            },
            {
                "label": TRAINING_MINING_LABEL,
                "data": {"entries": {entry: {"use": "notAllowed"} for entry in TRAINING_MINING_ENTRIES}},
            },
            {"label": GENERATION_LABEL, "data": credential.to_dict()},
            {"label": EXACT_LABEL, "data": exact_assertion(credential)},
        ],
    }


def _mime(path: Path) -> str:
    mime = AUDIO_MIME.get(path.suffix.lower())
    if mime is None:
        msg = f"audio: {path.name} has suffix {path.suffix!r}; expected one of {', '.join(sorted(AUDIO_MIME))}"
        raise ValidationError(msg, field="audio", value=str(path))
    return mime


def embed_c2pa(credential: Credential, audio_in: Path, audio_out: Path, chain: CertChain) -> None:
    """Write ``audio_out``: ``audio_in`` with a signed C2PA manifest for ``credential`` embedded.

    ``audio_out`` appears complete or not at all; it may be ``audio_in`` itself.

    Raises:
        NotFound: ``audio_in`` does not exist.
        ValidationError: not a WAV, MP3 or M4A file.
        AccordError: the C2PA library refused to sign (bad chain, unreadable audio ...).
    """
    if not audio_in.is_file():
        msg = f"audio: no file at {audio_in}"
        raise NotFound(msg)
    mime = _mime(audio_in)
    definition = manifest_definition(credential, audio_out.name, mime)
    info = c2pa.C2paSignerInfo(
        alg=chain.algorithm, sign_cert=chain.chain_pem, private_key=chain.private_key_pem, ta_url=chain.tsa_url
    )
    audio_out.parent.mkdir(parents=True, exist_ok=True)
    tmp = audio_out.with_name(audio_out.name + ".c2pa.tmp")
    try:
        with (
            c2pa.Signer.from_info(info) as signer,
            c2pa.Builder(definition) as builder,
            audio_in.open("rb") as source,
            tmp.open("w+b") as dest,
        ):
            builder.sign(signer, mime, source, dest)
        os.replace(tmp, audio_out)
    except c2pa.C2paError as err:
        msg = f"C2PA: could not sign {audio_in.name} with the {chain.source} chain ({chain.common_name}): {err}"
        raise AccordError(msg) from err
    finally:
        tmp.unlink(missing_ok=True)
