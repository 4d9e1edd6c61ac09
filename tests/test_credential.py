"""Content credentials: the signed sidecar, the embedded C2PA manifest, and verify_file for both."""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import struct
import wave
from datetime import timedelta
from pathlib import Path
from typing import Any

import c2pa
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID

from accord.errors import NotFound, ValidationError
from accord.provenance.certificates import (
    CHAIN_NAME,
    DEV_COMMON_NAME,
    ENV_CERT_CHAIN,
    ENV_PRIVATE_KEY,
    KEY_NAME,
    ROOT_NAME,
    c2pa_dir,
    ensure_dev_chain,
    load_chain,
    make_dev_chain,
)
from accord.provenance.credential import (
    GENERATION_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    TRAINING_MINING_ENTRIES,
    TRAINING_MINING_LABEL,
    Credential,
    embed_c2pa,
    wav_without_c2pa,
    write_sidecar,
)
from accord.provenance.verify import verify_file
from accord.signing import OperatorKey, canonical_json
from accord.timeutil import utcnow

NO_ENV: dict[str, str] = {}
FRAMES = 22_050


def sine_wav(path: Path, seconds: float = 1.0, rate: int = FRAMES) -> Path:
    """A mono 16-bit 440 Hz sine, written with the stdlib."""
    n = int(seconds * rate)
    samples = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(n))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_credential(audio: Path, midi_bytes: bytes = b"MThd fake midi") -> Credential:
    return Credential(
        output_id="OUT-0123456789ABCDEF",
        model_id="MODEL-piano-v1",
        manifest_root="ab" * 32,
        prompt={"style": "nocturne", "key": "D minor", "tempo_bpm": 72, "bars": 8},
        seed=1234,
        created="2026-11-01T12:00:00Z",
        generator="Accord 0.1.0",
        guard={"status": "pending", "note": "the replication guard is not built yet; nothing was checked"},
        attribution={"status": "pending", "note": "attribution is not built yet; nothing was computed"},
        media_sha256={"midi": hashlib.sha256(midi_bytes).hexdigest(), "audio": sha256(audio)},
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def chain(home: Path):
    return ensure_dev_chain(home, NO_ENV)


@pytest.fixture(scope="module")
def key() -> OperatorKey:
    return OperatorKey(Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, chain) -> dict[str, Any]:
    """One output: plain audio, its MIDI, its credential and the audio with the C2PA manifest embedded."""
    folder = tmp_path_factory.mktemp("output")
    plain = sine_wav(folder / "plain.wav")
    midi = folder / "out.mid"
    midi.write_bytes(b"MThd fake midi")
    credential = make_credential(plain)
    audio = folder / "OUT-0123456789ABCDEF.wav"
    embed_c2pa(credential, plain, audio, chain)
    return {"plain": plain, "midi": midi, "audio": audio, "credential": credential}


def read_manifest(path: Path) -> dict[str, Any]:
    with c2pa.Reader(str(path)) as reader:
        store = json.loads(reader.json())
    return store["manifests"][store["active_manifest"]]


# --- certificates -------------------------------------------------------------------------------


def test_dev_chain_is_made_once_with_what_c2pa_asks_of_a_signing_certificate(home, chain):
    folder = c2pa_dir(home)
    assert stat.S_IMODE(os.stat(folder / KEY_NAME).st_mode) == 0o600
    assert (folder / ROOT_NAME).is_file()
    leaf, root = x509.load_pem_x509_certificates((folder / CHAIN_NAME).read_bytes())
    assert leaf.issuer == root.subject and root.issuer == root.subject
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert timedelta(days=364) < leaf.not_valid_after_utc - leaf.not_valid_before_utc < timedelta(days=367)
    assert chain.common_name == DEV_COMMON_NAME
    assert (chain.algorithm, chain.source, chain.tsa_url) == ("es256", "development", None)
    assert ensure_dev_chain(home, NO_ENV).chain_pem == chain.chain_pem  # once: not remade


def test_a_dev_chain_about_to_expire_or_damaged_is_made_again(tmp_path):
    folder = c2pa_dir(tmp_path)
    folder.mkdir(parents=True)
    old_chain, old_key, _ = make_dev_chain(now=utcnow() - timedelta(days=365))
    (folder / CHAIN_NAME).write_bytes(old_chain)
    (folder / KEY_NAME).write_bytes(old_key)
    renewed = ensure_dev_chain(tmp_path, NO_ENV)
    assert renewed.chain_pem != old_chain
    assert renewed.not_valid_after - utcnow() > timedelta(days=364)
    (folder / KEY_NAME).write_bytes(b"not a key")
    assert ensure_dev_chain(tmp_path, NO_ENV).chain_pem != renewed.chain_pem


def test_load_chain_without_any_chain_says_how_to_make_one(tmp_path):
    with pytest.raises(NotFound, match="accord init"):
        load_chain(tmp_path, NO_ENV)


def test_operator_chain_named_by_the_environment_replaces_the_dev_chain(tmp_path, home, chain):
    operator_home = tmp_path / "operator"
    folder = c2pa_dir(home)
    env = {ENV_CERT_CHAIN: str(folder / CHAIN_NAME), ENV_PRIVATE_KEY: str(folder / KEY_NAME)}
    chain = ensure_dev_chain(operator_home, env)
    assert chain.source == "operator" and chain.algorithm == "es256"
    assert not c2pa_dir(operator_home).exists()  # nothing written when the operator brings a chain


def test_only_one_of_the_two_environment_variables_is_refused(tmp_path, home):
    with pytest.raises(ValidationError, match=ENV_PRIVATE_KEY):
        load_chain(tmp_path, {ENV_CERT_CHAIN: str(c2pa_dir(home) / CHAIN_NAME)})


def test_a_key_that_does_not_match_the_certificate_is_refused(tmp_path, home, chain):
    other = ensure_dev_chain(tmp_path / "other", NO_ENV)
    env = {ENV_CERT_CHAIN: str(c2pa_dir(home) / CHAIN_NAME), ENV_PRIVATE_KEY: str(other.chain_path.parent / KEY_NAME)}
    with pytest.raises(ValidationError, match="does not belong"):
        load_chain(tmp_path, env)


# --- the credential ------------------------------------------------------------------------------


def test_a_credential_with_made_up_values_is_refused(tmp_path):
    good = make_credential(sine_wav(tmp_path / "a.wav", seconds=0.01)).to_dict()
    with pytest.raises(ValidationError, match=r"media_sha256\.audio"):
        Credential.from_dict({**good, "media_sha256": {"audio": "not-a-hash"}})
    with pytest.raises(ValidationError, match="guard"):
        Credential.from_dict({**good, "guard": {}})
    with pytest.raises(ValidationError, match="created"):
        Credential.from_dict({**good, "created": "yesterday"})
    assert Credential.from_dict(good).to_dict() == good


# --- the sidecar --------------------------------------------------------------------------------


def test_sidecar_round_trip_verifies(tmp_path, key, signed):
    path = write_sidecar(signed["credential"], tmp_path / "out.credential.json", key)
    check = verify_file(path, public_key_hex=key.public_hex)
    assert check.valid, check.problems
    assert check.form == "sidecar"
    assert check.credential == signed["credential"].to_dict()
    assert Credential.from_dict(check.credential) == signed["credential"]


def test_sidecar_without_a_pinned_key_says_the_signer_is_unpinned(tmp_path, key, signed):
    path = write_sidecar(signed["credential"], tmp_path / "out.credential.json", key)
    check = verify_file(path)
    assert check.valid
    assert any("not pinned" in n for n in check.notes)


def test_sidecar_pinned_by_pem_verifies(tmp_path, key, signed):
    path = write_sidecar(signed["credential"], tmp_path / "out.credential.json", key)
    assert verify_file(path, public_key_hex=key.public_pem).valid


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    return [path]


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value[:-1] + ("0" if value[-1:] != "0" else "1")
    raise AssertionError(value)


def test_any_single_change_to_the_sidecar_credential_or_signature_fails(tmp_path, key, signed):
    path = write_sidecar(signed["credential"], tmp_path / "out.credential.json", key)
    document = json.loads(path.read_text())
    leaves = [("credential", *p) for p in _leaves(document["credential"])] + [
        ("signature", "value"),
        ("signature", "public_key"),
        ("signature", "algorithm"),
        ("format",),
    ]
    assert len(leaves) >= 15
    for leaf in leaves:
        tampered = json.loads(path.read_text())
        holder = tampered
        for step in leaf[:-1]:
            holder = holder[step]
        holder[leaf[-1]] = _changed(holder[leaf[-1]])
        bad = tmp_path / "tampered.credential.json"
        bad.write_text(json.dumps(tampered))
        assert not verify_file(bad).valid, f"changing {'.'.join(map(str, leaf))} went unnoticed"
        assert not verify_file(bad, public_key_hex=key.public_hex).valid


def test_an_added_field_in_the_sidecar_credential_fails(tmp_path, key, signed):
    path = write_sidecar(signed["credential"], tmp_path / "out.credential.json", key)
    document = json.loads(path.read_text())
    document["credential"]["guard"]["status"] = "passed"
    document["credential"]["guard"]["similarity"] = 0.01
    path.write_text(json.dumps(document))
    check = verify_file(path)
    assert not check.valid
    assert "signature: the Ed25519 signature does not match the credential" in check.problems


def test_a_sidecar_signed_by_another_key_fails_against_the_pinned_key(tmp_path, key, signed):
    impostor = OperatorKey(Ed25519PrivateKey.generate())
    path = write_sidecar(signed["credential"], tmp_path / "out.credential.json", impostor)
    assert verify_file(path).valid  # self-consistent ...
    check = verify_file(path, public_key_hex=key.public_hex)  # ... but not the operator's
    assert not check.valid
    assert any("not the pinned operator key" in p for p in check.problems)


def test_sidecar_media_hash_is_checked(tmp_path, key, signed):
    path = write_sidecar(signed["credential"], tmp_path / "out.credential.json", key)
    assert verify_file(path, media=signed["midi"]).valid
    assert verify_file(path, media=signed["plain"]).valid
    other = sine_wav(tmp_path / "other.wav", seconds=0.5)
    check = verify_file(path, media=other)
    assert not check.valid
    assert any("matches none" in p for p in check.problems)


def test_audio_with_embedded_manifest_matches_the_sidecar_audio_hash(tmp_path, key, signed):
    path = write_sidecar(signed["credential"], tmp_path / "out.credential.json", key)
    check = verify_file(path, media=signed["audio"])
    assert check.valid, check.problems
    assert any("less its embedded C2PA manifest" in n for n in check.notes)
    assert wav_without_c2pa(signed["audio"].read_bytes()) == signed["plain"].read_bytes()


def test_a_sidecar_that_is_not_json_fails(tmp_path):
    path = tmp_path / "broken.credential.json"
    path.write_text('{"format": ')
    check = verify_file(path)
    assert not check.valid and check.form == "sidecar"


# --- C2PA ---------------------------------------------------------------------------------------


def test_embedded_manifest_marks_ai_generation_no_training_and_the_generation(signed):
    manifest = read_manifest(signed["audio"])
    assertions = {a["label"]: a["data"] for a in manifest["assertions"]}
    actions = next(v for k, v in assertions.items() if k.startswith("c2pa.actions"))["actions"]
    assert actions[0]["action"] == "c2pa.created"
    assert actions[0]["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    entries = assertions[TRAINING_MINING_LABEL]["entries"]
    assert {name: e["use"] for name, e in entries.items()} == dict.fromkeys(TRAINING_MINING_ENTRIES, "notAllowed")
    generation = assertions[GENERATION_LABEL]
    assert generation["model_id"] == "MODEL-piano-v1"
    assert generation == signed["credential"].to_dict()
    assert manifest["claim_generator_info"][0]["name"] == "Accord"
    assert manifest["signature_info"]["common_name"] == DEV_COMMON_NAME


def test_embedded_wav_still_plays(signed):
    with wave.open(str(signed["audio"]), "rb") as w:
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (1, FRAMES, FRAMES)
        assert len(w.readframes(FRAMES)) == 2 * FRAMES


def test_c2pa_verify_reports_the_dev_chain_honestly(signed):
    check = verify_file(signed["audio"])
    assert check.valid, check.problems
    assert check.form == "c2pa"
    assert check.credential == signed["credential"].to_dict()
    assert "signature valid, signer not on a trust list (development chain)" in check.notes
    assert any("trainedAlgorithmicMedia" in n for n in check.notes)


def test_c2pa_signer_is_trusted_when_its_root_is_a_trust_anchor(home, signed):
    check = verify_file(signed["audio"], trust_anchors=c2pa_dir(home) / ROOT_NAME)
    assert check.valid, check.problems
    assert f"signature valid, signer {DEV_COMMON_NAME} on the verifier's trust list" in check.notes


def _data_chunk_offset(data: bytes) -> int:
    pos = 12
    while data[pos : pos + 4] != b"data":
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += 8 + size + (size & 1)
    return pos + 8


def test_flipping_audio_bytes_after_embedding_fails_verification(tmp_path, signed):
    data = bytearray(signed["audio"].read_bytes())
    start = _data_chunk_offset(bytes(data))
    for i in range(start + 1000, start + 1004):
        data[i] ^= 0xFF
    bad = tmp_path / "tampered.wav"
    bad.write_bytes(bytes(data))
    check = verify_file(bad)
    assert not check.valid
    assert any("assertion.dataHash.mismatch" in p for p in check.problems)


def test_changing_the_embedded_generation_fails_verification(tmp_path, signed):
    data = signed["audio"].read_bytes()
    assert data.count(b"MODEL-piano-v1") == 1
    bad = tmp_path / "tampered.wav"
    bad.write_bytes(data.replace(b"MODEL-piano-v1", b"MODEL-piano-v2"))
    check = verify_file(bad)
    assert not check.valid
    assert any("assertion.hashedURI.mismatch" in p for p in check.problems)


def test_audio_without_a_manifest_fails(signed):
    check = verify_file(signed["plain"])
    assert not check.valid and check.form == "c2pa"
    assert check.problems == ("c2pa: no C2PA manifest in plain.wav",)


def test_c2pa_media_check_uses_the_embedded_credential(tmp_path, signed):
    assert verify_file(signed["audio"], media=signed["midi"]).valid
    assert verify_file(signed["audio"], media=signed["plain"]).valid
    other = tmp_path / "other.mid"
    other.write_bytes(b"MThd another piece")
    check = verify_file(signed["audio"], media=other)
    assert not check.valid
    assert any("matches none" in p for p in check.problems)


def test_embedding_in_place_replaces_the_file_whole(tmp_path, chain):
    audio = sine_wav(tmp_path / "x.wav", seconds=0.1)
    credential = make_credential(audio)
    embed_c2pa(credential, audio, audio, chain)
    assert verify_file(audio).valid
    assert not list(tmp_path.glob("*.tmp"))


def test_the_credential_json_is_what_was_signed(tmp_path, key, signed):
    path = write_sidecar(signed["credential"], tmp_path / "out.credential.json", key)
    document = json.loads(path.read_text())
    assert document["format"] == "accord-credential/1"
    assert document["signature"] == key.signature_block(document["credential"])
    assert canonical_json(document["credential"]) == canonical_json(signed["credential"].to_dict())
