"""A licensed continuation is checked against every catalog work but its own source."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.datasets import service
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.outputs.studio import Prompt, generate_output, train_on_manifest
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from accord.settings import Settings
from accord.signing import ensure_operator_key
from tests.deliveries import catalog_agreement, small_catalog, write_delivery
from tests.test_studio import tune


def remix_catalog(store: Store, tmp_path: Path) -> None:
    """The small catalog with train, generate and remix licences on both sides, reels on tune(1) and tune(2)."""
    doc = small_catalog()
    doc["agreements"].append(catalog_agreement("AGR-P2", "P-PUB2", "publishing"))
    for agreement in doc["agreements"]:
        agreement["uses"] = ["train", "generate", "remix"]
    for rec in doc["recordings"]:
        rec["genre"] = "reel"
        rec["media"][0].pop("sha256", None)
    import_delivery(store, write_delivery(tmp_path / "d", doc, {"media/a.mid": tune(1), "media/b.mid": tune(2)}))


@pytest.mark.slow
def test_a_continuation_licensed_for_remix_is_not_blocked_as_a_copy_of_its_own_source(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    remix_catalog(store, tmp_path)
    key, _ = ensure_operator_key(settings.home)
    manifest, _, _ = service.build(store, key, use="train", as_of=store.clock(), territory="GB")
    record, _ = train_on_manifest(store, settings, manifest.root, preset="tiny", steps=12, seed=3)
    outputs.add_creator(store, "ana", "free", "GB", parse_plans(settings.plans))
    source = "GBXYZ2600001"  # the first recording, in its stored (compact) form

    made = generate_output(
        store,
        settings,
        model_id=record.model_id,
        creator_id="ana",
        prompt=Prompt(style="reel", bars=8, from_isrc=source, prime_bars=4),
        seed=5,
    )

    guard = made.output.credential["guard"]
    assert guard["status"] == "clear"
    assert guard["source_passed_over"] == [source]
    assert all(c["isrc"] != source for c in guard["closest"])  # the source is not a copy to block
