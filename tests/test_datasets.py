"""Consented training sets: manifests, proofs, signatures, the loader, taint and approvals."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.datasets import repository, service
from accord.datasets.disclosure import Undisclosed
from accord.datasets.loader import ManifestLoader
from accord.datasets.manifest import Manifest, build_manifest, parse_filters
from accord.datasets.merkle import MerkleTree, item_blind
from accord.datasets.proofs import make_proof, verify_proof
from accord.errors import NotLicensed, ValidationError
from accord.licensing import LicensingPolicy
from accord.registry.entities import Catalog, Party, PartyKind, Use
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
    return OperatorKey(Ed25519PrivateKey.generate())


def built(cat: Catalog | None = None) -> Manifest:
    return build_manifest(cat or demo_like(), as_of=datetime(2026, 11, 1, tzinfo=UTC), territory="GB", secret=b"op")


def proof_of(manifest: Manifest, key: OperatorKey, isrc: str) -> dict[str, Any]:
    """A proof as the rights holder receives it: through JSON."""
    return json.loads(json.dumps(make_proof(manifest, manifest.tree(), key, isrc)))


def item_fields(manifest: Manifest, isrc: str) -> set[str]:
    """Every field value of one recording's item (if any) and of the reasons it was left out (if so)."""
    out: set[str] = {isrc}
    for item in (i for i in manifest.items if i.isrc == isrc):
        out |= {item.media_sha256, item_blind(manifest.salt or b"", item.isrc).hex()}
        out |= set(item.agreements) | set(item.standing) | set(item.works) | set(item.master_owners)
        out |= set(item.publishers) | {hashlib.sha256(item.leaf()).hexdigest()}
    for excluded in (e for e in manifest.excluded if e.isrc == isrc):
        out |= {v for reason in excluded.reasons for v in reason.values()}
    return out


def other_items_fields(manifest: Manifest, isrc: str) -> set[str]:
    """Every field value of every other item that is not also one of ``isrc``'s own: what its proof must not show."""
    others = set().union(*(item_fields(manifest, i.isrc) for i in manifest.items if i.isrc != isrc))
    return others - item_fields(manifest, isrc)


@pytest.mark.parametrize("isrc", ["GBXYZ2600001", "GBXYZ2600002", "GBXYZ2600003"])
def test_an_inclusion_proof_verifies_with_the_file_the_root_and_the_operator_key(key: OperatorKey, isrc: str) -> None:
    manifest = built()
    proof = proof_of(manifest, key, isrc)
    assert proof["kind"] == "inclusion" and proof["format"] == "accord-proof/2"
    assert proof["item"]["isrc"] == isrc
    verdict = verify_proof(proof, manifest.root, public_key_hex=key.public_hex, isrc=isrc)
    assert verdict.valid, verdict.checks


@pytest.mark.parametrize("isrc", ["GBXYZ2600000", "GBXYZ2600004", "GBXYZ2600005", "GBXYZ2699999"])
def test_a_non_inclusion_proof_verifies_and_shows_neighbours_only_as_commitments(key: OperatorKey, isrc: str) -> None:
    manifest = built()
    proof = proof_of(manifest, key, isrc)
    assert proof["kind"] == "non_inclusion"
    assert verify_proof(proof, manifest.root, public_key_hex=key.public_hex).valid
    for side in ("left", "right"):
        if proof[side] is not None:
            assert set(proof[side]) == {"isrc_key", "item_hash", "leaf_index", "audit_path"}


@pytest.mark.parametrize("isrc", ["GBXYZ2600000", "GBXYZ2600001", "GBXYZ2600002", "GBXYZ2600004", "GBXYZ2699999"])
def test_a_proof_contains_nothing_of_any_other_item(key: OperatorKey, isrc: str) -> None:
    manifest = built()
    text = json.dumps(make_proof(manifest, manifest.tree(), key, isrc))
    leaked = [value for value in other_items_fields(manifest, isrc) if value in text]
    assert leaked == []


def test_a_non_inclusion_proof_names_why_the_recording_was_left_out(key: OperatorKey) -> None:
    manifest = built()
    proof = make_proof(manifest, manifest.tree(), key, "GBXYZ2600004")
    assert proof["excluded_because"][0]["code"] == "opted_out"


def test_why_a_recording_was_left_out_names_no_co_owner_that_asked_not_to_be_named(key: OperatorKey) -> None:
    from dataclasses import replace

    cat = demo_like()
    cat = replace(
        cat, parties={**cat.parties, "P-NOSIGN": Party("P-NOSIGN", PartyKind.PUBLISHER, "Quiet Pub", disclose=False)}
    )
    manifest = built(cat)
    plain = make_proof(manifest, manifest.tree(), key, "GBXYZ2600005")
    assert "P-NOSIGN" in json.dumps(plain["excluded_because"])  # what it would say
    proof = make_proof(
        manifest, manifest.tree(), key, "GBXYZ2600005", undisclosed=Undisclosed.to_viewer(cat, "P-LABEL")
    )
    assert "P-NOSIGN" not in json.dumps(proof) and proof["excluded_because"][0]["code"] == "no_agreement"
    assert verify_proof(proof, manifest.root, public_key_hex=key.public_hex).valid


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
    manifest = built()
    proof = proof_of(manifest, key, isrc)
    proof.pop("excluded_because", None)  # informative only, not part of what is proven
    mutants = _flip_everywhere(proof)
    assert len(mutants) > 1000
    for mutant in mutants:
        if mutant == proof:
            continue
        assert not verify_proof(mutant, manifest.root, public_key_hex=key.public_hex).valid, mutant


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.sampled_from(["\ud800", "00" * 32]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        | st.just([{"value": "\ud800", "blind": "00" * 32}])
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), isrc=st.sampled_from(["GBXYZ2600002", "GBXYZ2600004"]))
def test_a_malformed_proof_is_invalid_and_never_raises(key: OperatorKey, data: st.DataObject, isrc: str) -> None:
    manifest = built()
    proof = proof_of(manifest, key, isrc)
    paths = [("item", name) for name in ("agreements", "publishers", "isrc")] + [
        (k,) for k in ("statement", "claim", "signature", "item", "left", "right", "blind", "leaf_index", "isrc")
    ]
    path = data.draw(st.sampled_from(paths))
    value = data.draw(json_values)
    target = proof
    for step in path[:-1]:
        target = target.get(step) if isinstance(target.get(step), dict) else {}
    target[path[-1]] = value
    verdict = verify_proof(proof, manifest.root, public_key_hex=key.public_hex, salt_hex=data.draw(st.text(max_size=4)))
    assert isinstance(verdict.valid, bool)


def test_an_id_that_is_no_text_at_all_is_invalid_not_an_error(key: OperatorKey) -> None:
    manifest = built()
    proof = proof_of(manifest, key, "GBXYZ2600002")
    proof["item"]["agreements"] = [{"value": "\ud800", "blind": "00" * 32}]  # a lone surrogate, as JSON allows
    verdict = verify_proof(proof, manifest.root, public_key_hex=key.public_hex)
    assert not verdict.valid and "item" in {n for n, ok, _ in verdict.checks if not ok}


def test_every_single_bit_change_to_the_root_fails(key: OperatorKey) -> None:
    manifest = built()
    proof = make_proof(manifest, manifest.tree(), key, "GBXYZ2600001")
    for bad_root in _flip_everywhere(manifest.root):
        assert not verify_proof(proof, bad_root, public_key_hex=key.public_hex).valid


def test_a_tampered_leaf_fails(key: OperatorKey) -> None:
    manifest = built()
    proof = proof_of(manifest, key, "GBXYZ2600001")
    proof["item"]["agreements"][0]["value"] = "AGR-FORGED"
    verdict = verify_proof(proof, manifest.root, public_key_hex=key.public_hex)
    assert not verdict.valid and "audit path" in {n for n, ok, _ in verdict.checks if not ok}


def test_a_non_inclusion_proof_with_a_wrong_neighbour_fails(key: OperatorKey) -> None:
    manifest = built()
    proof = proof_of(manifest, key, "GBXYZ2600004")
    tree = manifest.tree()
    index = proof["left"]["leaf_index"] if proof["left"] else proof["right"]["leaf_index"]
    other = (index + 2) % len(manifest.items)  # a real leaf, but not the neighbour
    forged = {
        "isrc_key": manifest.leaf_key(other).hex(),
        "item_hash": manifest.leaf_item_hash(other).hex(),
        "leaf_index": index,
        "audit_path": [h.hex() for h in tree.inclusion_proof(index)],
    }
    side = "left" if proof["left"] else "right"
    assert not verify_proof({**proof, side: forged}, manifest.root, public_key_hex=key.public_hex).valid


def test_non_adjacent_neighbours_prove_nothing(key: OperatorKey) -> None:
    # a recording not in the manifest whose keyed hash falls between leaf 0 and leaf 2: shown
    # leaves 0 and 2 (both real, both bracketing it), the proof hides leaf 1, which may be it
    manifest = built()
    tree = manifest.tree()
    isrc = next(
        c
        for c in (f"GBXYZ2698{n:03d}" for n in range(1000))
        if manifest.leaf_key(0) < manifest.isrc_key(c) < manifest.leaf_key(2)
    )
    proof = proof_of(manifest, key, isrc)
    wide = {
        side: {
            "isrc_key": manifest.leaf_key(i).hex(),
            "item_hash": manifest.leaf_item_hash(i).hex(),
            "leaf_index": i,
            "audit_path": [h.hex() for h in tree.inclusion_proof(i)],
        }
        for side, i in (("left", 0), ("right", 2))
    }
    verdict = verify_proof({**proof, **wide}, manifest.root, public_key_hex=key.public_hex)
    assert not verdict.valid and [n for n, ok, _ in verdict.checks if not ok] == ["adjacent"]


def test_a_non_inclusion_proof_relabelled_for_another_recording_fails(key: OperatorKey) -> None:
    manifest = built()
    proof = proof_of(manifest, key, "GBXYZ2699999")
    for isrc in ("GBXYZ2600001", "GBXYZ2600004"):
        relabelled = {**proof, "isrc": isrc, "claim": {**proof["claim"], "isrc": isrc}}
        assert not verify_proof(relabelled, manifest.root, public_key_hex=key.public_hex).valid


def test_a_proof_re_signed_by_another_key_fails(key: OperatorKey) -> None:
    manifest = built()
    other = OperatorKey(Ed25519PrivateKey.generate())
    proof = make_proof(manifest, manifest.tree(), other, "GBXYZ2600001")
    verdict = verify_proof(proof, manifest.root, public_key_hex=key.public_hex)
    assert not verdict.valid
    assert {n for n, ok, _ in verdict.checks if not ok} == {"statement signature", "claim signature"}
    # the key written in the file proves nothing: a forger writes its own
    assert verify_proof(proof, manifest.root, public_key_hex=other.public_hex).valid


def test_without_an_operator_key_nothing_verifies(key: OperatorKey) -> None:
    manifest = built()
    proof = make_proof(manifest, manifest.tree(), key, "GBXYZ2600001")
    for missing in ("", "not a key", key.public_hex[:-2]):
        verdict = verify_proof(proof, manifest.root, public_key_hex=missing)
        assert not verdict.valid and "operator key" in {n for n, ok, _ in verdict.checks if not ok}


def test_an_old_format_proof_is_refused_with_what_to_do(key: OperatorKey) -> None:
    old = {"format": "accord-proof/1", "kind": "inclusion", "isrc": "GBXYZ2600001", "statement": {}, "signature": {}}
    verdict = verify_proof(old, "00" * 32, public_key_hex=key.public_hex)
    assert not verdict.valid
    [(name, passed, detail)] = verdict.checks
    assert (
        name == "format"
        and not passed
        and "accord-proof/1 is no longer accepted" in detail
        and "new accord-proof/2" in detail
    )


def test_a_format_1_manifest_cannot_be_proven(key: OperatorKey) -> None:
    manifest = built()
    old = Manifest(
        manifest.header, manifest.items, manifest.excluded, MerkleTree([i.leaf() for i in manifest.items]).root.hex()
    )
    assert old.statement()["format"] == "accord-manifest/1" and "salt_commitment" not in old.statement()
    with pytest.raises(ValidationError, match=r"rebuild the training set"):
        make_proof(old, old.tree(), key, "GBXYZ2600001")


def test_an_auditor_given_the_salt_checks_the_keyed_hash(key: OperatorKey) -> None:
    manifest = built()
    assert manifest.salt is not None
    salt = manifest.salt.hex()
    proof = make_proof(manifest, manifest.tree(), key, "GBXYZ2600004")
    assert verify_proof(proof, manifest.root, public_key_hex=key.public_hex, salt_hex=salt).valid
    wrong_key = {**proof, "claim": {**proof["claim"], "isrc_key": manifest.isrc_key("GBXYZ2600009").hex()}}
    # (an operator that signs a false keyed hash is caught by an auditor holding the salt)
    signed_lie = {**wrong_key, "claim_signature": key.signature_block(wrong_key["claim"])}
    verdict = verify_proof(signed_lie, manifest.root, public_key_hex=key.public_hex, salt_hex=salt)
    assert not verdict.valid and "keyed hash" in {n for n, ok, _ in verdict.checks if not ok}
    assert not verify_proof(proof, manifest.root, public_key_hex=key.public_hex, salt_hex="00" * 32).valid


def test_the_salt_keeps_the_root_secret_from_guesses_and_the_same_build_gives_the_same_root() -> None:
    same, again = built(), built()
    assert same.root == again.root and same.salt == again.salt
    other_secret = build_manifest(demo_like(), as_of=datetime(2026, 11, 1, tzinfo=UTC), territory="GB", secret=b"x")
    assert other_secret.items == same.items and other_secret.root != same.root


def test_an_empty_manifest_proves_that_nothing_is_in_it(key: OperatorKey) -> None:
    manifest = built(with_media(catalog(recording("GBXYZ2600001"))))
    assert manifest.items == ()
    proof = make_proof(manifest, manifest.tree(), key, "GBXYZ2600001")
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
