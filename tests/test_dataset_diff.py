"""What changed between two manifests, and why: read from the manifests alone."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.datasets.diff import ItemChange, ManifestDiff, diff_manifests
from accord.datasets.manifest import Manifest, build_manifest
from accord.registry.entities import Catalog, MediaRef, Recording
from tests.factories import ISRC_1, ISRC_2, JAN_1_2026, WORK_1, agreement, catalog, optout, recording, work

JUNE = datetime(2026, 6, 1, tzinfo=UTC)
JULY = datetime(2026, 7, 1, tzinfo=UTC)
AUGUST = datetime(2026, 8, 1, tzinfo=UTC)


def with_midi(rec: Recording, tag: str = "") -> Recording:
    """A factory recording with one MIDI file; another ``tag`` gives another file."""
    sha = hashlib.sha256(f"{rec.isrc}{tag}".encode()).hexdigest()
    return dataclasses.replace(rec, media=(MediaRef(sha, "midi", 1_000 + len(tag), f"{rec.isrc}.mid"),))


def licensed(*extra: object, label_end: datetime | None = None, label_start: datetime | None = None) -> Catalog:
    """Two recordings by P-LABEL embodying W-0001 (P-PUB), both licensed unless told otherwise."""
    return catalog(
        with_midi(recording(ISRC_1, genre="reel")),
        with_midi(recording(ISRC_2, genre="jig")),
        work(WORK_1),
        agreement("AGR-LABEL", "P-LABEL", start=label_start or JAN_1_2026, end=label_end),
        agreement("AGR-PUB", "P-PUB", side="publishing"),
        *extra,
    )


def build(cat: Catalog, at: datetime = JUNE, **kwargs: object) -> Manifest:
    return build_manifest(cat, use="train", as_of=at, territory="GB", **kwargs)


def only(changes: tuple[ItemChange, ...]) -> ItemChange:
    assert len(changes) == 1, changes
    return changes[0]


def test_a_manifest_compared_with_itself_has_no_changes():
    manifest = build(licensed())
    diff = diff_manifests(manifest, manifest)
    assert diff.empty and diff.counts_by_code() == {}
    assert (diff.a, diff.b) == (manifest.root, manifest.root)


def test_an_agreement_that_ends_between_builds_removes_its_items_as_license_ended():
    cat = licensed(label_end=JULY)
    diff = diff_manifests(build(cat, JUNE), build(cat, AUGUST))
    assert [c.isrc for c in diff.removed] == [ISRC_1, ISRC_2]
    change = diff.removed[0]
    assert change.change == "removed"
    assert change.codes == ("license_ended", "agreement_expired")
    assert any("AGR-LABEL" in why for why in change.why)
    assert diff.counts_by_code() == {"agreement_expired": 2, "license_ended": 2}


def test_an_opt_out_removes_the_item_as_opt_out():
    cat = licensed(optout("OPT-1", "P-LABEL", target=ISRC_1, effective=JULY))
    change = only(diff_manifests(build(cat, JUNE), build(cat, AUGUST)).removed)
    assert change.isrc == ISRC_1
    assert change.codes == ("opt_out", "opted_out")
    assert any("OPT-1" in why for why in change.why)


def test_a_lost_agreement_is_license_ended_and_a_narrowed_one_license_narrowed():
    before = build(licensed())
    gone = catalog(
        *(r for r in licensed().recordings.values()), work(WORK_1), agreement("AGR-PUB", "P-PUB", side="publishing")
    )
    narrowed = licensed(agreement("AGR-LABEL", "P-LABEL", territory="US"))
    assert diff_manifests(before, build(gone)).removed[0].codes == ("license_ended", "no_agreement")
    assert diff_manifests(before, build(narrowed)).removed[0].codes == (
        "license_narrowed",
        "territory_not_covered",
    )


def test_an_agreement_that_starts_between_builds_adds_its_items_as_license_started():
    cat = licensed(label_start=JULY)
    diff = diff_manifests(build(cat, JUNE), build(cat, AUGUST))
    change = diff.added[0]
    assert [c.isrc for c in diff.added] == [ISRC_1, ISRC_2] and not diff.removed
    assert change.codes == ("license_started", "agreement_not_started")
    assert any("now licensed under AGR-LABEL, AGR-PUB" in why for why in change.why)


def test_a_new_agreement_adds_items_that_had_none_as_license_started():
    unlicensed = catalog(
        *licensed().recordings.values(), work(WORK_1), agreement("AGR-PUB", "P-PUB", side="publishing")
    )
    change = diff_manifests(build(unlicensed), build(licensed())).added[0]
    assert change.codes == ("license_started", "no_agreement")


def test_a_new_recording_is_added_as_a_new_delivery():
    extra = with_midi(recording("GBXYZ2600003"))
    change = only(diff_manifests(build(licensed()), build(licensed(extra))).added)
    assert (change.isrc, change.change, change.codes) == ("GBXYZ2600003", "added", ("new_delivery",))


def test_a_training_file_delivered_later_adds_the_item_as_a_new_delivery():
    without = dataclasses.replace(
        licensed(), recordings={**licensed().recordings, ISRC_1: recording(ISRC_1, genre="reel")}
    )
    change = only(diff_manifests(build(without), build(licensed())).added)
    assert change.codes == ("new_delivery", "no_training_media")


def test_a_lifted_opt_out_adds_the_item_back():
    opted = licensed(optout("OPT-1", "P-LABEL", target=ISRC_1))
    change = only(diff_manifests(build(opted), build(licensed())).added)
    assert change.codes == ("opt_out_lifted", "opted_out")


def test_a_recording_gone_from_the_catalog_is_recording_removed():
    cat = licensed()
    smaller = dataclasses.replace(cat, recordings={ISRC_1: cat.recordings[ISRC_1]})
    change = only(diff_manifests(build(cat), build(smaller)).removed)
    assert (change.isrc, change.codes) == (ISRC_2, ("recording_removed",))


def test_a_filter_that_leaves_an_item_out_is_filters_changed():
    cat = licensed()
    change = only(diff_manifests(build(cat), build(cat, filters=(("genre", ("reel",)),))).removed)
    assert (change.isrc, change.codes) == (ISRC_2, ("filters_changed", "filtered_out"))


def test_a_changed_media_file_is_media_changed():
    cat = licensed()
    redelivered = dataclasses.replace(
        cat, recordings={**cat.recordings, ISRC_1: with_midi(cat.recordings[ISRC_1], "v2")}
    )
    diff = diff_manifests(build(cat), build(redelivered))
    change = only(diff.changed)
    assert (change.isrc, change.change, change.codes) == (ISRC_1, "changed", ("media_changed",))
    assert not diff.added and not diff.removed


def test_other_agreements_relied_on_are_agreements_changed():
    # the policy relies on the first fitting agreement in id order: AGR-AAA now comes first
    diff = diff_manifests(build(licensed()), build(licensed(agreement("AGR-AAA", "P-LABEL"))))
    assert [(c.isrc, c.codes) for c in diff.changed] == [
        (ISRC_1, ("agreements_changed",)),
        (ISRC_2, ("agreements_changed",)),
    ]
    assert "no longer: AGR-LABEL; new: AGR-AAA" in diff.changed[0].why[0]


def test_the_diff_serializes_to_json_with_counts():
    cat = licensed(label_end=JULY)
    diff = diff_manifests(build(cat, JUNE), build(cat, AUGUST))
    data = json.loads(json.dumps(diff.to_dict()))
    assert data["counts"] == {"added": 0, "removed": 2, "changed": 0}
    assert data["removed"][0]["codes"] == ["license_ended", "agreement_expired"]
    assert isinstance(diff, ManifestDiff)


# --- property: the diff accounts for exactly the items that differ ------------------------------

ISRCS = tuple(f"GBXYZ26{n:05d}" for n in range(1, 7))


def delivered(isrcs: set[str], versions: dict[str, int]) -> Catalog:
    recs = [with_midi(recording(i), str(versions.get(i, 0))) for i in sorted(isrcs)]
    return catalog(
        *recs, work(WORK_1), agreement("AGR-LABEL", "P-LABEL"), agreement("AGR-PUB", "P-PUB", side="publishing")
    )


subsets = st.sets(st.sampled_from(ISRCS))
versions = st.dictionaries(st.sampled_from(ISRCS), st.integers(0, 1))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subsets, subsets, versions, versions)
def test_property_added_removed_and_changed_are_exactly_the_differences(in_a, in_b, v_a, v_b):
    a, b = build(delivered(in_a, v_a)), build(delivered(in_b, v_b))
    diff = diff_manifests(a, b)
    assert [c.isrc for c in diff.added] == sorted(in_b - in_a)
    assert [c.isrc for c in diff.removed] == sorted(in_a - in_b)
    assert [c.isrc for c in diff.changed] == sorted(i for i in in_a & in_b if v_a.get(i, 0) != v_b.get(i, 0))
    assert all(c.codes == ("new_delivery",) for c in diff.added)
    assert all(c.codes == ("recording_removed",) for c in diff.removed)
    assert diff.empty == (a.root == b.root)
