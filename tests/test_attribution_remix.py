"""Remix and continuation credit: the bars taken from a source recording are credited to it directly."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest

from accord.attribution.contract import PPM_WHOLE, Attribution, ItemWeight, attribution_problems
from accord.attribution.remix import REMIX_VERSION, Derived, credit_remix, derived_bars, output_bars
from accord.registry.store import Store
from accord.settings import Settings
from tests.test_remix_guard import remix_catalog
from tests.test_studio import tiny_model, tune

SOURCE = "GBXYZ2600001"  # First Song: master P-LABEL 100%; work W-1, P-PUB 60% and P-PUB2 40%
OTHER = "GBXYZ2600002"  # Second Song: master P-LABEL; work W-2, P-PUB 100%
SCALE = [62, 64, 66, 67, 69, 71, 73, 74]


def pattern(parts: list[tuple[int, int, int]]) -> bytes:
    """A 4/4 fiddle line of quavers: for each ``(seed, first bar, bars)``, those bars (0-based) of
    :func:`tune`'s pattern for ``seed``, or with a negative seed that many bars of new material (random
    pitches drawn by the seed, nothing like any pattern), one after the other."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    track.append(mido.Message("program_change", program=40, time=0))
    for seed, first, bars in parts:
        fresh = np.random.default_rng(abs(seed)).integers(55, 80, size=bars * 8)
        for k, n in enumerate(range(first * 8, (first + bars) * 8)):
            pitch = int(fresh[k]) if seed < 0 else SCALE[(n * (seed + 1) + n // 8) % len(SCALE)]
            track.append(mido.Message("note_on", note=pitch, velocity=80, time=0))
            track.append(mido.Message("note_off", note=pitch, velocity=0, time=240))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def test_a_twelve_bar_piece_primed_with_four_bars_of_a_recording_takes_those_four_bars() -> None:
    primed = pattern([(1, 0, 4), (-1, 0, 8)])  # bars 1-4 of the source, then 8 bars of new material
    derived = derived_bars(primed, tune(1), SOURCE)
    assert output_bars(primed) == 12 and derived.total_bars == 12
    assert derived.bars == (1, 2, 3, 4)
    assert derived.direct_ppm == math.ceil(PPM_WHOLE * 4 / 12) == 333_334  # never below the bars' exact share
    assert derived.passages and derived.passages[0].source_bars[0] == 1


def test_a_source_quoted_twice_is_found_twice_and_an_unrelated_piece_takes_nothing() -> None:
    twice = pattern([(1, 0, 2), (-2, 0, 4), (1, 0, 2), (-3, 0, 4)])  # source bars 1-2 at bars 1-2 and 7-8
    derived = derived_bars(twice, tune(1), SOURCE)
    assert derived.bars == (1, 2, 7, 8) and derived.total_bars == 12
    assert derived.direct_ppm == 333_334
    assert derived_bars(pattern([(-4, 0, 12)]), tune(1), SOURCE).bars == ()


def _influence(reliable: bool) -> Attribution:
    items = (ItemWeight(OTHER, 300_000, "Second Song"), ItemWeight(SOURCE, 100_001, "First Song"))
    return Attribution(
        method="trak",
        method_version="trak-test",
        reliable=reliable,
        unattributed_ppm=PPM_WHOLE - 400_001,
        items=items,
        works=(),
        master=(),
        publishing=(),
        manifest_root="root",
    )


@pytest.mark.parametrize("reliable", [True, False])
def test_remix_credit_keeps_every_sum_whole_and_pays_the_rest_by_influence_only_when_reliable(
    reliable: bool, store: Store, tmp_path: Path
) -> None:
    remix_catalog(store, tmp_path)
    catalog = store.snapshot()
    derived = Derived(SOURCE, (1, 2, 3, 4), 12)
    result = credit_remix(_influence(reliable), derived, influence_catalog=catalog, source_catalog=catalog)
    data = result.to_credential()
    assert attribution_problems(data) == []
    assert result.reliable and result.method == "trak" and result.method_version == f"trak-test+{REMIX_VERSION}"
    weights = {i["isrc"]: i["weight_ppm"] for i in data["items"]}
    assert sum(weights.values()) + data["unattributed_ppm"] == PPM_WHOLE
    rest = PPM_WHOLE - 333_334
    if reliable:  # the influence part scaled to the rest; the source gets both parts
        assert weights[OTHER] == round(300_000 * rest / PPM_WHOLE)
        assert weights[SOURCE] == 333_334 + round(100_001 * rest / PPM_WHOLE)
    else:  # unreliable influence: the rest goes to the training pool
        assert weights == {SOURCE: 333_334} and data["unattributed_ppm"] == rest
    total = sum(weights.values())
    for side in ("master", "publishing"):
        assert sum(h["weight_ppm"] for h in data["holders"][side]) == total
    holders = {h["party_id"]: h["weight_ppm"] for h in data["holders"]["publishing"]}
    if not reliable:  # W-1's publishers by their shares, 60/40
        assert holders == {"P-PUB": 200_000, "P-PUB2": 133_334}
    assert result.details["remix"]["bars"] == [1, 2, 3, 4]


def test_nothing_derived_leaves_the_influence_attribution_as_it_was(store: Store, tmp_path: Path) -> None:
    remix_catalog(store, tmp_path)
    influence = _influence(True)
    catalog = store.snapshot()
    result = credit_remix(influence, Derived(SOURCE, (), 12), influence_catalog=catalog, source_catalog=catalog)
    assert result.to_credential() == influence.to_credential()


@pytest.fixture
def remix_model(
    store: Store, settings: Settings, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    from accord.datasets import service
    from accord.outputs import store as outputs
    from accord.outputs.plans import parse_plans
    from accord.signing import ensure_operator_key

    remix_catalog(store, tmp_path)
    key, _ = ensure_operator_key(settings.home)
    manifest, _, _ = service.build(store, key, use="train", as_of=store.clock(), territory="GB")
    record, _ = tiny_model(store, settings, manifest.root, tmp_path_factory)
    outputs.add_creator(store, "ana", "free", "GB", parse_plans(settings.plans))
    return {"model": record, "manifest": manifest}


@pytest.mark.slow
def test_a_credential_credits_the_remixed_recording_its_bars_through_the_store(
    store: Store, settings: Settings, remix_model: dict[str, Any]
) -> None:
    from accord.attribution.service import context_for_model, credential_attribution, query_from_midi

    model_id = remix_model["model"].model_id
    primed = pattern([(1, 0, 4), (-1, 0, 8)])
    ids = query_from_midi(context_for_model(store, settings, model_id), primed, style="reel").token_ids
    data = credential_attribution(store, settings, model_id, ids, primed, "piece", remix_of=SOURCE)
    assert attribution_problems(data) == [] and data["reliable"] is True
    weights = {i["isrc"]: i["weight_ppm"] for i in data["items"]}
    assert weights[SOURCE] >= 333_334
    assert {h["party_id"] for h in data["holders"]["master"]} == {"P-LABEL"}
    assert {h["party_id"] for h in data["holders"]["publishing"]} >= {"P-PUB", "P-PUB2"}
    plain = credential_attribution(store, settings, model_id, ids, primed, "piece")
    assert REMIX_VERSION not in plain["method_version"]


@pytest.mark.slow
def test_a_studio_continuation_of_four_bars_credits_its_source_at_least_those_bars(
    store: Store, settings: Settings, remix_model: dict[str, Any]
) -> None:
    from accord.outputs.studio import Prompt, generate_output

    made = generate_output(
        store,
        settings,
        model_id=remix_model["model"].model_id,
        creator_id="ana",
        prompt=Prompt(style="reel", bars=12, from_isrc=SOURCE, prime_bars=4),
        seed=2,
    )
    data = made.output.credential["attribution"]
    assert attribution_problems(data) == [] and data["reliable"] is True
    assert data["method_version"].endswith(f"+{REMIX_VERSION}")
    weights = {i["isrc"]: i["weight_ppm"] for i in data["items"]}
    assert weights[SOURCE] >= math.ceil(PPM_WHOLE * 4 / 12)
    assert made.output.credential["guard"]["source_passed_over"] == [SOURCE]
