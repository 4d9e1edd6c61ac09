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

from accord.attribution.contract import Attribution, ItemWeight, WorkRef, not_computed
from accord.attribution.guard.verdict import Evidence, GuardVerdict
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
from accord.provenance.compare import first_difference
from accord.provenance.credential import (
    EXACT_LABEL,
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
    assert data.count(b"MODEL-piano-v1") == 2  # the structured assertion and the exact copy
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


# --- the embedded credential is exactly the sidecar's ------------------------------------------------------


def differences(embedded: Any, sidecar: Any, path: str = "credential") -> list[str]:
    """Every field where two decoded JSON documents differ, in value or in exact type (``1`` is not ``1.0``)."""
    if type(embedded) is not type(sidecar):
        return [f"{path}: {type(embedded).__name__} {embedded!r} vs {type(sidecar).__name__} {sidecar!r}"]
    if isinstance(embedded, dict):
        out = [f"{path}.{k}: missing on one side" for k in sorted(set(embedded) ^ set(sidecar))]
        return out + [
            d for k in sorted(set(embedded) & set(sidecar)) for d in differences(embedded[k], sidecar[k], f"{path}.{k}")
        ]
    if isinstance(embedded, list):
        if len(embedded) != len(sidecar):
            return [f"{path}: {len(embedded)} items vs {len(sidecar)}"]
        return [
            d for i, (a, b) in enumerate(zip(embedded, sidecar, strict=True)) for d in differences(a, b, f"{path}[{i}]")
        ]
    return [] if embedded == sidecar else [f"{path}: {embedded!r} vs {sidecar!r}"]


# scores with 17 significant digits, which the C2PA library's float parser reads one unit in the last place off
SYMBOLIC = Evidence(
    isrc="GBXYZ2600001",
    title="The Fiddler's Reel",
    check="symbolic",
    score=2.5900849171547358,
    threshold=6.0,
    shared_notes=11,
    shared_bars=2,
    piece_bars=(11, 16),
    catalog_bars=(3, 4),
    piece_seconds=(20.0, 29.5),
    catalog_seconds=(4.75, 7.125),
    piece_line="melody",
    catalog_line="melody",
    transposition=-2,
)
AUDIO = Evidence(
    isrc="GBXYZ2600002",
    title="Second Tune",
    check="audio",
    score=17.0,
    threshold=80.0,
    piece_seconds=(0.0, 10.0),
    catalog_seconds=(1.856, 11.856),
    catalog_line="midi render",
    matched_fraction=0.38551839337380045,
)


def guard_record(closest: tuple[Evidence, ...], seed: int = 7) -> dict[str, Any]:
    """The guard record generate_output puts in a credential: the verdict, the seed used and each attempt."""
    verdict = GuardVerdict(
        status="clear",
        threshold=6.0,
        audio_threshold=80.0,
        closest=closest,
        checks=("symbolic", "audio"),
        policy_version="guard-policy/3",
        catalog={"recordings": 2, "lines": 4, "audio_clips": 2},
        notes=(),
    )
    attempts = [
        {"seed": seed, "status": "clear", "closest": {"isrc": e.isrc, "check": e.check, "score": e.score}}
        for e in closest[:1]
    ]
    return verdict.to_dict() | {"requested_seed": seed, "seed_used": seed, "attempts": attempts}


ATTRIBUTED = Attribution(
    method="trak",
    method_version="trak/2",
    reliable=True,
    unattributed_ppm=400_000,
    items=(
        ItemWeight("GBXYZ2600001", 350_000, "The Fiddler's Reel", (WorkRef("W-1", "Fiddler's Reel"),)),
        ItemWeight("GBXYZ2600002", 250_000, "Second Tune", (WorkRef("W-2", ""),)),
    ),
    works=(("W-1", 350_000), ("W-2", 250_000)),
    master=(("P-LABEL", 600_000),),
    publishing=(("P-PUB", 350_000), ("P-PUB2", 250_000)),
    manifest_root="ab" * 32,
).to_credential()

PENDING = {"status": "pending", "note": "nothing was checked"}
OUTPUT_KINDS = {
    "plain generation, guard and attribution pending": (
        {
            "style": "nocturne",
            "key": "D minor",
            "tempo_bpm": 72,
            "bars": 8,
            "from": None,
            "prime_bars": None,
            "temperature": 0.85,
        },
        PENDING,
        PENDING,
    ),
    "plain generation, guard passages and attribution": (
        {
            "style": "reel",
            "key": None,
            "tempo_bpm": None,
            "bars": 16,
            "from": None,
            "prime_bars": None,
            "temperature": 1.0,
        },
        guard_record((SYMBOLIC, AUDIO)),
        ATTRIBUTED,
    ),
    "continuation of a recording, with attribution": (
        {
            "style": "reel",
            "key": "D major",
            "tempo_bpm": 120,
            "bars": 8,
            "from": "GBXYZ2600001",
            "prime_bars": 4,
            "temperature": 0.85,
        },
        guard_record((SYMBOLIC,), seed=1_000_003),
        ATTRIBUTED,
    ),
    "remix of a recording, attribution not computed": (
        {
            "style": "reel",
            "key": "E minor",
            "tempo_bpm": 96,
            "bars": 12,
            "from": "GBXYZ2600002",
            "prime_bars": 2,
            "temperature": 0.7,
        },
        guard_record((AUDIO, SYMBOLIC)),
        not_computed("attribution failed: the model's index is missing"),
    ),
    "no catalog work near it, no attribution": (
        {
            "style": "reel",
            "key": None,
            "tempo_bpm": None,
            "bars": 4,
            "from": None,
            "prime_bars": None,
            "temperature": 0.85,
        },
        guard_record(()),
        not_computed("the model has no attribution index"),
    ),
}


@pytest.fixture(scope="module", params=sorted(OUTPUT_KINDS))
def output_kind(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chain, key) -> dict[str, Any]:
    """One output of each kind, released as generate_output releases it: the sidecar, then the signed audio."""
    prompt, guard, attribution = OUTPUT_KINDS[request.param]
    folder = tmp_path_factory.mktemp("kind")
    plain = sine_wav(folder / "plain.wav", seconds=0.2)
    credential = Credential(
        **{**make_credential(plain).to_dict(), "prompt": prompt, "guard": guard, "attribution": attribution}
    )
    sidecar = write_sidecar(credential, folder / "OUT-0123456789ABCDEF.credential.json", key)
    audio = folder / "OUT-0123456789ABCDEF.wav"
    embed_c2pa(credential, plain, audio, chain)
    return {"audio": audio, "sidecar": sidecar, "credential": credential}


def test_the_credential_read_back_from_the_audio_is_the_sidecars_field_by_field(output_kind):
    embedded = verify_file(output_kind["audio"])
    sidecar = json.loads(output_kind["sidecar"].read_text())["credential"]
    assert embedded.valid, embedded.problems
    assert differences(embedded.credential, sidecar) == []
    assert differences(sidecar, output_kind["credential"].to_dict()) == []


def test_audio_and_sidecar_verified_together_are_found_identical(output_kind, key):
    check = verify_file(output_kind["audio"], sidecar=output_kind["sidecar"], public_key_hex=key.public_hex)
    assert check.valid, check.problems
    assert (
        "the credential embedded in OUT-0123456789ABCDEF.wav is the sidecar's, field by field, exactly" in check.notes
    )
    assert (
        "sidecar OUT-0123456789ABCDEF.credential.json: Ed25519 signature valid, by the pinned operator key"
        in check.notes
    )
    from_sidecar = verify_file(output_kind["sidecar"], media=output_kind["audio"], public_key_hex=key.public_hex)
    assert from_sidecar.valid, from_sidecar.problems
    assert any(
        n.startswith("the credential embedded in OUT-0123456789ABCDEF.wav is the sidecar's") for n in from_sidecar.notes
    )


def test_a_credential_holds_its_values_as_rfc8785_reads_them(tmp_path):
    data = make_credential(sine_wav(tmp_path / "a.wav", seconds=0.01)).to_dict()
    credential = Credential.from_dict({**data, "guard": guard_record((SYMBOLIC,))})
    guard = credential.to_dict()["guard"]
    assert guard["threshold"] == 6 and type(guard["threshold"]) is int  # 6.0 is signed as "6"
    assert guard["closest"][0]["piece_bars"] == [11, 16]  # a tuple is a JSON array
    assert type(guard["closest"][0]["score"]) is float
    with pytest.raises(ValidationError, match=r"credential\.prompt: .*RFC 8785"):
        Credential.from_dict({**data, "prompt": {"bars": float("nan")}})


@pytest.fixture(scope="module")
def with_passages(tmp_path_factory: pytest.TempPathFactory, chain, key) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("passages")
    prompt, guard, attribution = OUTPUT_KINDS["plain generation, guard passages and attribution"]
    plain = sine_wav(folder / "plain.wav", seconds=0.2)
    credential = Credential(
        **{**make_credential(plain).to_dict(), "prompt": prompt, "guard": guard, "attribution": attribution}
    )
    audio = folder / "OUT-0123456789ABCDEF.wav"
    embed_c2pa(credential, plain, audio, chain)
    return {
        "audio": audio,
        "credential": credential,
        "sidecar": write_sidecar(credential, folder / "x.credential.json", key),
    }


def test_a_tampered_sidecar_field_is_found_and_named(tmp_path, with_passages, key):
    document = json.loads(with_passages["sidecar"].read_text())
    document["credential"]["guard"]["closest"][0]["catalog_seconds"][1] = 8.125
    tampered = tmp_path / "OUT-0123456789ABCDEF.credential.json"
    tampered.write_text(json.dumps(document))
    named = (
        "mismatch between the credential embedded in OUT-0123456789ABCDEF.wav and the sidecar at "
        "credential.guard.closest[0].catalog_seconds[1]: embedded has 7.125, sidecar has 8.125"
    )
    check = verify_file(with_passages["audio"], sidecar=tampered, public_key_hex=key.public_hex)
    assert not check.valid
    assert named in check.problems
    assert f"sidecar {tampered.name}: signature: the Ed25519 signature does not match the credential" in check.problems
    from_sidecar = verify_file(tampered, media=with_passages["audio"])
    assert not from_sidecar.valid and named in from_sidecar.problems


def test_a_changed_type_is_a_difference_even_where_the_value_compares_equal(tmp_path, with_passages):
    document = json.loads(with_passages["sidecar"].read_text())
    document["credential"]["attribution"]["reliable"] = 1  # True == 1 in Python; not in a credential
    tampered = tmp_path / "t.credential.json"
    tampered.write_text(json.dumps(document))
    check = verify_file(with_passages["audio"], sidecar=tampered)
    assert any(
        "at credential.attribution.reliable: embedded has boolean true, sidecar has integer 1" in p
        for p in check.problems
    ), check.problems


def test_a_sidecar_for_another_output_is_a_mismatch(tmp_path, with_passages, signed, key):
    other = write_sidecar(signed["credential"], tmp_path / "other.credential.json", key)
    check = verify_file(with_passages["audio"], sidecar=other, public_key_hex=key.public_hex)
    assert not check.valid
    assert any(p.startswith("mismatch between the credential embedded in") for p in check.problems)


def test_embedded_copies_that_disagree_are_a_problem(tmp_path, chain, monkeypatch):
    import accord.provenance.credential as module

    plain = sine_wav(tmp_path / "plain.wav", seconds=0.1)
    credential = make_credential(plain)
    real = module.manifest_definition

    def disagreeing(*args: Any, **kwargs: Any) -> dict[str, Any]:
        definition = real(*args, **kwargs)
        for assertion in definition["assertions"]:
            if assertion["label"] == GENERATION_LABEL:
                assertion["data"] = {**assertion["data"], "seed": 4321}
        return definition

    monkeypatch.setattr(module, "manifest_definition", disagreeing)
    embed_c2pa(credential, plain, tmp_path / "x.wav", chain)
    check = verify_file(tmp_path / "x.wav")
    assert not check.valid
    assert any("c2pa: the embedded copies differ at credential.seed" in p for p in check.problems), check.problems


def test_audio_embedded_before_the_exact_copy_still_verifies_against_its_sidecar(tmp_path, chain, key, monkeypatch):
    import accord.provenance.credential as module

    prompt, guard, attribution = OUTPUT_KINDS["plain generation, guard passages and attribution"]
    plain = sine_wav(tmp_path / "plain.wav", seconds=0.1)
    credential = Credential(
        **{**make_credential(plain).to_dict(), "prompt": prompt, "guard": guard, "attribution": attribution}
    )
    real = module.manifest_definition

    def before(*args: Any, **kwargs: Any) -> dict[str, Any]:
        definition = real(*args, **kwargs)
        definition["assertions"] = [a for a in definition["assertions"] if a["label"] != EXACT_LABEL]
        return definition

    monkeypatch.setattr(module, "manifest_definition", before)
    audio = tmp_path / "OUT-0123456789ABCDEF.wav"
    embed_c2pa(credential, plain, audio, chain)
    sidecar = write_sidecar(credential, tmp_path / "OUT-0123456789ABCDEF.credential.json", key)
    check = verify_file(audio, sidecar=sidecar)
    assert check.valid, check.problems
    assert check.credential["guard"]["closest"][0]["piece_bars"] == [11, 16]  # not "CxA=": read as stored
    assert any(n.startswith(f"no {EXACT_LABEL} assertion") for n in check.notes)
    assert any("to within one unit in the last place" in n for n in check.notes)


def test_json_nested_100000_deep_is_refused_with_a_clear_problem(tmp_path, with_passages):
    deep = tmp_path / "deep.credential.json"
    deep.write_text('{"format": "accord-credential/1", "credential": ' + "[" * 100_000 + "]" * 100_000 + "}")
    check = verify_file(deep)
    assert not check.valid and check.form == "sidecar"
    assert len(check.problems) == 1 and "nested" in check.problems[0] and "deep.credential.json" in check.problems[0]
    beside = verify_file(with_passages["audio"], sidecar=deep)
    assert not beside.valid and any("nested" in p for p in beside.problems)


def test_first_difference_names_the_first_field_in_sorted_order_with_exact_types():
    a = {"b": [1, 2.0, True], "a": {"x": None}, "c": "s"}
    assert first_difference(a, json.loads(json.dumps(a))) is None
    assert first_difference(a, {**a, "b": [1, 2, True]}) == "credential.b[1]: left has float 2.0, right has integer 2"
    assert first_difference(a, {**a, "b": [1, 2.0, 1]}) == "credential.b[2]: left has boolean true, right has integer 1"
    assert first_difference(a, {**a, "a": {}, "c": "t"}) == "credential.a.x: only in the left"
    assert first_difference(a, {**a, "b": [1]}, names=("embedded", "sidecar")) == (
        "credential.b: embedded has 3 items, sidecar has 1"
    )
    one_ulp = math.nextafter(2.0, 3.0)
    assert first_difference({"f": 2.0}, {"f": one_ulp}) is not None
    assert first_difference({"f": 2.0}, {"f": one_ulp}, float_ulps=1) is None


# --- the command and the API -------------------------------------------------------------------------------


def _tampered_beside(folder: Path, with_passages: dict[str, Any]) -> tuple[Path, Path]:
    """A copy of the signed audio with, beside it, its sidecar whose catalog_seconds[1] was changed."""
    audio = folder / with_passages["audio"].name
    audio.write_bytes(with_passages["audio"].read_bytes())
    document = json.loads(with_passages["sidecar"].read_text())
    document["credential"]["guard"]["closest"][0]["catalog_seconds"][1] = 8.125
    sidecar = folder / f"{audio.stem}.credential.json"
    sidecar.write_text(json.dumps(document))
    return audio, sidecar


def test_credential_verify_compares_the_audio_with_the_sidecar_beside_it(tmp_path, with_passages):
    from typer.testing import CliRunner

    from accord.cli import app

    runner = CliRunner()
    audio = tmp_path / with_passages["audio"].name
    audio.write_bytes(with_passages["audio"].read_bytes())
    (tmp_path / f"{audio.stem}.credential.json").write_bytes(with_passages["sidecar"].read_bytes())
    ok = runner.invoke(app, ["credential", "verify", str(audio), "--json"])
    assert ok.exit_code == 0, ok.output
    assert any("is the sidecar's, field by field, exactly" in n for n in json.loads(ok.output)["notes"])

    _, sidecar = _tampered_beside(tmp_path, with_passages)
    bad = runner.invoke(app, ["credential", "verify", str(audio), "--json"])
    assert bad.exit_code == 1
    assert any("credential.guard.closest[0].catalog_seconds[1]" in p for p in json.loads(bad.output)["problems"])
    named = runner.invoke(app, ["credential", "verify", str(sidecar), "--media", str(audio)])
    assert named.exit_code == 1 and "credential.guard.closest[0].catalog_seconds[1]" in named.output

    deep = tmp_path / "deep.credential.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    refused = runner.invoke(app, ["credential", "verify", str(deep)])
    assert refused.exit_code == 1 and "nested deeper than 64 levels" in refused.output
    assert refused.exception is None or isinstance(refused.exception, SystemExit)


def test_the_verify_route_compares_an_uploaded_audio_with_its_uploaded_sidecar(
    store, settings, tmp_path, with_passages
):
    from fastapi.testclient import TestClient

    from accord.api.app import create_app
    from accord.api.auth import create_key

    _, secret = create_key(store, role="creator", party_id="ana")
    auth = {"Authorization": f"Bearer {secret}"}
    audio, sidecar = _tampered_beside(tmp_path, with_passages)
    with TestClient(create_app(settings, store=store)) as client:
        good = client.post(
            "/v1/credentials/verify",
            headers=auth,
            files={
                "file": (audio.name, audio.read_bytes()),
                "sidecar": ("s.json", with_passages["sidecar"].read_bytes()),
            },
        ).json()
        assert good["valid"], good["problems"]
        bad = client.post(
            "/v1/credentials/verify",
            headers=auth,
            files={"file": (audio.name, audio.read_bytes()), "sidecar": (sidecar.name, sidecar.read_bytes())},
        ).json()
        deep = client.post(
            "/v1/credentials/verify", headers=auth, files={"file": ("d.json", b"[" * 100_000 + b"]" * 100_000)}
        )
    assert not bad["valid"] and bad["form"] == "c2pa"
    assert any("at credential.guard.closest[0].catalog_seconds[1]: embedded has 7.125" in p for p in bad["problems"])
    assert deep.status_code == 200 and not deep.json()["valid"]
    assert "nested deeper than 64 levels" in deep.json()["problems"][0]


# --- released outputs, end to end ---------------------------------------------------------------------------


@pytest.mark.slow
def test_every_released_output_embeds_exactly_its_sidecar_and_its_stored_credential(store, settings, tmp_path):
    """Generations from a tiny model: the guard's record and the attribution as computed, stored and signed."""
    from accord.datasets import service
    from accord.outputs import store as outputs
    from accord.outputs.plans import parse_plans
    from accord.outputs.studio import Prompt, generate_output, train_on_manifest
    from accord.registry.importer import import_delivery
    from accord.signing import ensure_operator_key
    from tests.deliveries import catalog_agreement, small_catalog, write_delivery
    from tests.test_studio import tune

    doc = small_catalog()
    doc["agreements"].append(catalog_agreement("AGR-P2", "P-PUB2", "publishing"))
    for rec in doc["recordings"]:
        rec["genre"] = "reel"
        rec["media"][0].pop("sha256", None)
    import_delivery(store, write_delivery(tmp_path / "d", doc, {"media/a.mid": tune(1), "media/b.mid": tune(2)}))
    key, _ = ensure_operator_key(settings.home)
    manifest, _, _ = service.build(store, key, use="train", as_of=store.clock(), territory="GB")
    model, _ = train_on_manifest(store, settings, manifest.root, preset="tiny", steps=12, seed=3)
    outputs.add_creator(store, "ana", "free", "GB", parse_plans(settings.plans))
    # a remix is not here: the guard blocks every candidate, as the prime is the catalog recording itself
    prompts = (Prompt(style="reel", bars=4), Prompt(style="reel", key="D major", tempo_bpm=132, bars=8))
    kinds = []
    for prompt in prompts:
        made = generate_output(store, settings, model_id=model.model_id, creator_id="ana", prompt=prompt, seed=5)
        embedded = verify_file(made.paths["audio"], sidecar=made.paths["credential"], public_key_hex=key.public_hex)
        assert embedded.valid, embedded.problems
        sidecar = json.loads(made.paths["credential"].read_text())["credential"]
        stored = outputs.get_output(store, made.output.output_id).credential
        assert differences(embedded.credential, sidecar) == []
        assert differences(stored, sidecar) == []
        kinds.append((sidecar["prompt"]["from"], sidecar["guard"]["status"], sidecar["attribution"]["status"]))
    assert kinds == [(None, "clear", "computed")] * 2


def test_a_sidecar_signed_before_rfc_8785_still_verifies_and_says_so(tmp_path, key):
    """Sidecars released before the switch were signed over sorted-key json.dumps: 6.0 there, 6 in RFC 8785."""
    credential = make_credential(sine_wav(tmp_path / "a.wav", seconds=0.01)).to_dict()
    credential["guard"] = json.loads(json.dumps(guard_record((SYMBOLIC,))))  # floats as old sidecars hold them
    legacy = json.dumps(credential, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert legacy != canonical_json(credential)
    path = tmp_path / "old.credential.json"
    document = {"format": "accord-credential/1", "credential": credential}
    path.write_text(
        json.dumps(
            document | {"signature": {"algorithm": "ed25519", "public_key": key.public_hex, "value": key.sign(legacy)}}
        )
    )
    check = verify_file(path, public_key_hex=key.public_hex)
    assert check.valid, check.problems
    assert any("canonical form before RFC 8785" in n for n in check.notes)
    credential["seed"] += 1
    path.write_text(
        json.dumps(
            document | {"signature": {"algorithm": "ed25519", "public_key": key.public_hex, "value": key.sign(legacy)}}
        )
    )
    assert not verify_file(path, public_key_hex=key.public_hex).valid
