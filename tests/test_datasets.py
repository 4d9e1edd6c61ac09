"""Consented training sets: manifests, proofs, signatures, the loader, taint and approvals."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.datasets import repository, service
from accord.datasets.loader import ManifestLoader
from accord.datasets.manifest import build_manifest, parse_filters
from accord.datasets.proofs import make_proof, verify_proof
from accord.errors import NotLicensed, ValidationError
from accord.licensing import LicensingPolicy
from accord.registry.entities import Catalog, Use
from accord.registry.importer import import_delivery
from accord.registry.media import TamperedMedia
from accord.registry.store import ChangeSet, Store
from accord.signing import OperatorKey, ensure_operator_key
from tests.deliveries import catalog_agreement, small_catalog, write_delivery
from tests.factories import agreement, catalog, optout, recording, work
from tests.test_licensing_properties import catalogs

AT = datetime(2026, 10, 15, tzinfo=UTC)


def with_media(cat: Catalog) -> Catalog:
    """Give every recording a MIDI file reference so it can be a training item."""
    from dataclasses import replace

    from accord.registry.entities import MediaRef

    recs = {
        k: replace(r, media=(MediaRef(hashlib.sha256(k.encode()).hexdigest(), "midi", 100, f"{k}.mid"),))
        for k, r in cat.recordings.items()
    }
    return replace(cat, recordings=recs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cat=catalogs(), month=st.sampled_from([2, 6, 12]), territory=st.sampled_from(["GB", "US", "FR"]))
def test_a_manifest_never_includes_an_ineligible_recording(cat: Catalog, month: int, territory: str) -> None:
    cat = with_media(cat)
    at = datetime(2026, month, 1, tzinfo=UTC)
    manifest = build_manifest(cat, use="train", as_of=at, territory=territory)
    policy = LicensingPolicy(cat)
    for item in manifest.items:
        decision = policy.decide(item.isrc, "train", at, territory)
        assert decision.eligible and item.agreements == decision.relied_on
    assert sorted([i.isrc for i in manifest.items] + [e.isrc for e in manifest.excluded]) == sorted(cat.recordings)
    assert all(e.reasons for e in manifest.excluded)
    assert [i.isrc for i in manifest.items] == sorted(i.isrc for i in manifest.items)
    assert manifest.tree().root.hex() == manifest.root


def demo_like() -> Catalog:
    """Five recordings: three licensed, one whose publisher has not signed, one with an opted-out artist."""
    works = [work(f"W-{n}", owners={"P-PUB": 100}) for n in range(1, 5)] + [work("W-5", owners={"P-NOSIGN": 100})]
    recs = [
        recording(f"GBXYZ26{n:05d}", owners={"P-LABEL": 100}, works=(f"W-{n}",), artists=(f"P-ART{n}",))
        for n in range(1, 5)
    ]
    recs.append(recording("GBXYZ2600005", owners={"P-LABEL": 100}, works=("W-5",)))
    deals = [agreement("AGR-M", "P-LABEL", "master"), agreement("AGR-P", "P-PUB", "publishing")]
    return with_media(catalog(*works, *recs, *deals, optout("O-1", "P-ART4", "catalog", "", ("train",), AT)))


def test_excluded_recordings_carry_the_reasons_of_their_decision() -> None:
    manifest = build_manifest(demo_like(), as_of=datetime(2026, 11, 1, tzinfo=UTC), territory="GB")
    assert [i.isrc for i in manifest.items] == ["GBXYZ2600001", "GBXYZ2600002", "GBXYZ2600003"]
    why = {e.isrc: e.codes for e in manifest.excluded}
    assert why == {"GBXYZ2600004": {"opted_out"}, "GBXYZ2600005": {"no_agreement"}}


def test_filters_leave_recordings_out_with_a_reason() -> None:
    manifest = build_manifest(
        demo_like(), as_of=AT, territory="GB", filters=parse_filters(["isrc=GBXYZ2600001,GBXYZ2600002"])
    )
    assert [i.isrc for i in manifest.items] == ["GBXYZ2600001", "GBXYZ2600002"]
    assert "filtered_out" in {c for e in manifest.excluded for c in e.codes}
    with pytest.raises(ValidationError, match="filter"):
        parse_filters(["colour=red"])


# ------------------------------------------------------------------ proofs


@pytest.fixture(scope="module")
def key() -> OperatorKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return OperatorKey(Ed25519PrivateKey.generate())


def signed(key: OperatorKey, cat: Catalog | None = None) -> tuple[Any, dict[str, str]]:
    manifest = build_manifest(cat or demo_like(), as_of=datetime(2026, 11, 1, tzinfo=UTC), territory="GB")
    return manifest, key.signature_block(manifest.statement())


@pytest.mark.parametrize("isrc", ["GBXYZ2600001", "GBXYZ2600002", "GBXYZ2600003"])
def test_an_inclusion_proof_verifies_with_only_the_file_and_the_root(key: OperatorKey, isrc: str) -> None:
    manifest, sig = signed(key)
    proof = json.loads(json.dumps(make_proof(manifest, manifest.tree(), sig, isrc)))
    assert proof["kind"] == "inclusion"
    verdict = verify_proof(proof, manifest.root, public_key_hex=key.public_hex)
    assert verdict.valid, verdict.checks


@pytest.mark.parametrize("isrc", ["GBXYZ2600000", "GBXYZ2600004", "GBXYZ2600005", "GBXYZ2699999"])
def test_a_non_inclusion_proof_shows_the_two_neighbours(key: OperatorKey, isrc: str) -> None:
    manifest, sig = signed(key)
    proof = json.loads(json.dumps(make_proof(manifest, manifest.tree(), sig, isrc)))
    assert proof["kind"] == "non_inclusion"
    assert verify_proof(proof, manifest.root, public_key_hex=key.public_hex).valid


def test_a_non_inclusion_proof_names_why_the_recording_was_left_out(key: OperatorKey) -> None:
    manifest, sig = signed(key)
    proof = make_proof(manifest, manifest.tree(), sig, "GBXYZ2600004")
    assert proof["excluded_because"][0]["code"] == "opted_out"


def _flip_everywhere(value: Any) -> list[Any]:
    """Every copy of ``value`` with one bit of one hex string, or one digit / string changed."""
    out: list[Any] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out += [{**value, k: m} for m in _flip_everywhere(v)]
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += [[*value[:i], m, *value[i + 1 :]] for m in _flip_everywhere(v)]
    elif isinstance(value, str) and len(value) in (64, 128) and all(c in "0123456789abcdef" for c in value):
        raw = bytearray.fromhex(value)
        for byte in range(len(raw)):
            for bit in range(8):
                changed = bytearray(raw)
                changed[byte] ^= 1 << bit
                out.append(changed.hex())
    elif isinstance(value, bool):
        out.append(not value)
    elif isinstance(value, int):
        out.append(value + 1)
    elif isinstance(value, str):
        out.append(value + "x")
    return out


@pytest.mark.parametrize("isrc", ["GBXYZ2600002", "GBXYZ2600004"])
def test_every_single_change_to_a_proof_fails_verification(key: OperatorKey, isrc: str) -> None:
    manifest, sig = signed(key)
    proof = json.loads(json.dumps(make_proof(manifest, manifest.tree(), sig, isrc)))
    proof.pop("excluded_because", None)  # informative only, not part of what is proven
    mutants = _flip_everywhere(proof)
    assert len(mutants) > 1000
    for mutant in mutants:
        if mutant == proof:
            continue
        assert not verify_proof(mutant, manifest.root, public_key_hex=key.public_hex).valid, mutant


def test_every_single_bit_change_to_the_root_fails(key: OperatorKey) -> None:
    manifest, sig = signed(key)
    proof = make_proof(manifest, manifest.tree(), sig, "GBXYZ2600001")
    for bad_root in _flip_everywhere(manifest.root):
        assert not verify_proof(proof, bad_root, public_key_hex=key.public_hex).valid


def test_a_proof_signed_by_another_key_fails_when_the_key_is_pinned(key: OperatorKey) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    manifest, _ = signed(key)
    other = OperatorKey(Ed25519PrivateKey.generate())
    proof = make_proof(manifest, manifest.tree(), other.signature_block(manifest.statement()), "GBXYZ2600001")
    assert verify_proof(proof, manifest.root).valid  # unpinned: self-consistent
    assert not verify_proof(proof, manifest.root, public_key_hex=key.public_hex).valid


def test_an_empty_manifest_proves_that_nothing_is_in_it(key: OperatorKey) -> None:
    manifest, sig = signed(key, with_media(catalog(recording("GBXYZ2600001"))))
    assert manifest.items == ()
    proof = make_proof(manifest, manifest.tree(), sig, "GBXYZ2600001")
    assert verify_proof(proof, manifest.root, public_key_hex=key.public_hex).valid


# ---------------------------------------------------------- store, loader, taint


@pytest.fixture
def registry(store: Store, tmp_path: Path) -> Store:
    doc = small_catalog()
    doc["agreements"].append(catalog_agreement("AGR-P2", "P-PUB2", "publishing", model_scope="approved_versions"))
    import_delivery(store, write_delivery(tmp_path / "d", doc))
    return store


@pytest.fixture
def operator(settings: Any) -> OperatorKey:
    return ensure_operator_key(settings.home)[0]


def build(store: Store, key: OperatorKey, **kw: Any) -> Any:
    manifest, record, created = service.build(store, key, use="train", as_of=store.clock(), territory="GB", **kw)
    return manifest, record, created


def test_a_manifest_is_stored_once_and_loads_back_identical(registry: Store, operator: OperatorKey) -> None:
    manifest, record, created = build(registry, operator)
    assert created and record.tree_size == 2
    again, record2, created2 = build(registry, operator)
    assert not created2 and record2 == record and again.root == manifest.root
    loaded, _ = repository.load_manifest(registry, manifest.root[:10])
    assert loaded.to_bytes() == manifest.to_bytes()
    assert registry.media.path_for(record.file_sha256).read_bytes() == manifest.to_bytes()


def test_a_manifest_as_of_the_future_is_refused(registry: Store, operator: OperatorKey) -> None:
    with pytest.raises(ValidationError, match="future"):
        service.build(registry, operator, use="train", as_of=datetime(2030, 1, 1, tzinfo=UTC), territory="GB")


def test_the_loader_yields_only_manifest_files_checked_by_hash(registry: Store, operator: OperatorKey) -> None:
    manifest, _, _ = build(registry, operator)
    loader = ManifestLoader(manifest, registry.media)
    loader.verify()
    assert [f.item.isrc for f in loader] == ["GBXYZ2600001", "GBXYZ2600002"]
    with pytest.raises(NotLicensed, match="not in manifest"):
        loader.read("GBXYZ2699999")


def test_a_tampered_media_file_stops_training_with_a_clear_error(registry: Store, operator: OperatorKey) -> None:
    manifest, _, _ = build(registry, operator)
    path = registry.media.path_for(manifest.items[1].media_sha256)
    path.write_bytes(path.read_bytes() + b"tampered")
    loader = ManifestLoader(manifest, registry.media)
    with pytest.raises(TamperedMedia, match=r"nothing was trained.*GBXYZ2600002"):
        loader.verify()
    with pytest.raises(TamperedMedia):
        list(loader)


def test_an_opt_out_after_a_build_flags_exactly_the_affected_manifests_and_models(
    registry: Store, operator: OperatorKey
) -> None:
    both, _, _ = build(registry, operator)
    only_two, _, _ = build(registry, operator, filters=parse_filters(["isrc=GBXYZ2600002"]))
    repository.register_model(registry, "m-both", both.root, card={}, actor="t")
    repository.register_model(registry, "m-two", only_two.root, card={}, actor="t")
    repository.record_approval(registry, "m-both", "P-PUB2", approve=True, by="P-PUB2")
    before = service.audit(registry, registry.clock())
    assert all(not m.flags for m in before.manifests)
    assert all(not s.blocked_uses for s in before.models)

    registry.apply(
        ChangeSet(optouts=(optout("O-W1", "P-PUB2", "work", "W-1", ("train",), datetime(2026, 11, 1, tzinfo=UTC)),)),
        actor="P-PUB2",
        action="optout.added",
    )
    report = service.audit(registry, registry.clock())
    by_root = {m.root: m for m in report.manifests}
    flags = by_root[both.root].flags
    assert [(f.isrc, f.use) for f in flags] == [("GBXYZ2600001", Use.TRAIN)]
    assert flags[0].since == datetime(2026, 11, 1, tzinfo=UTC)
    assert flags[0].reasons[0]["code"] == "opted_out"
    assert by_root[only_two.root].flags == ()
    status = {s.model_id: s for s in report.models}
    assert not status["m-both"].can_serve("generate") and not status["m-both"].can_serve("train")
    assert status["m-two"].can_serve("generate")
    assert service.status_of_model(registry, "m-both", registry.clock()).blocked_uses == status["m-both"].blocked_uses


def test_an_ended_agreement_flags_since_its_end(registry: Store, operator: OperatorKey) -> None:
    from dataclasses import replace

    manifest, _, _ = build(registry, operator)
    ended = replace(registry.snapshot().agreements["AGR-M"], end=datetime(2026, 12, 1, tzinfo=UTC))
    registry.apply(ChangeSet(agreements=(ended,)), actor="t", action="agreement.ended")
    assert service.audit(registry, datetime(2026, 11, 30, tzinfo=UTC)).manifests[0].flags == ()
    later = service.audit(registry, datetime(2026, 12, 2, tzinfo=UTC)).manifests[0]
    assert {(f.isrc, f.use) for f in later.flags} == {
        (i.isrc, u) for i in manifest.items for u in (Use.TRAIN, Use.GENERATE)
    }
    assert all(f.since == datetime(2026, 12, 1, tzinfo=UTC) for f in later.flags)


def test_a_model_needing_per_version_approval_waits_and_a_refusal_blocks_it(
    registry: Store, operator: OperatorKey
) -> None:
    manifest, _, _ = build(registry, operator)
    repository.register_model(registry, "m1", manifest.root, card={"note": "v1"}, actor="t")
    status = service.status_of_model(registry, "m1", registry.clock())
    assert status.pending_approvals == ("P-PUB2",) and not status.can_serve("generate")
    assert service.audit(registry, registry.clock()).pending_by_licensor == {"P-PUB2": ["m1"]}
    repository.record_approval(registry, "m1", "P-PUB2", approve=True, by="P-PUB2", note="fine")
    assert service.status_of_model(registry, "m1", registry.clock()).can_serve("generate")
    repository.record_approval(registry, "m1", "P-PUB2", approve=False, by="P-PUB2", note="changed our mind")
    status = service.status_of_model(registry, "m1", registry.clock())
    assert status.refused_by == ("P-PUB2",) and not status.can_serve("generate")
    history = repository.approvals(registry, "m1")
    assert [(a.decision, a.by) for a in history] == [("approved", "P-PUB2"), ("refused", "P-PUB2")]
