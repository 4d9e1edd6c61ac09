"""Export policy and usage events: plans limit downloads, every play and download is recorded once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from accord.errors import NotFound, ValidationError
from accord.outputs import store as outputs
from accord.outputs.plans import Plan, Refused, check_download, parse_plans
from accord.outputs.studio import copy_for_download
from accord.registry.store import Store
from accord.settings import Settings

PLANS = parse_plans('{"free": {"downloads_per_month": 0}, "pro": {"downloads_per_month": 2}}')


def make_output(store: Store, creator: str, output_id: str = "OUT-1") -> outputs.Output:
    files = {
        "midi": {"sha256": store.media.put_bytes(b"MThd-fake"), "name": f"{output_id}.mid"},
        "audio": {"sha256": store.media.put_bytes(b"RIFF-fake"), "name": f"{output_id}.wav"},
    }
    out = outputs.Output(output_id, "m-1", creator, store.clock(), {"style": "reel"}, 7, files, {"model_id": "m-1"})
    outputs.save_output(store, out)
    return out


@pytest.mark.parametrize(
    ("text", "field"),
    [("nope", "plans"), ("[]", "plans"), ('{"pro": {"downloads_per_month": -1}}', "plans.pro.downloads_per_month")],
)
def test_bad_plan_configuration_names_the_field(text: str, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_plans(text)
    assert info.value.field == field


def test_a_free_plan_streams_only_and_a_paid_plan_has_a_monthly_allowance() -> None:
    with pytest.raises(Refused, match="streams only"):
        check_download(PLANS["free"], 0)
    check_download(Plan("pro", 2), 1)
    with pytest.raises(Refused, match="used up"):
        check_download(Plan("pro", 2), 2)


def test_downloads_are_counted_per_calendar_month(store: Store, settings: Settings, tmp_path: Path) -> None:
    settings_pro = Settings(home=settings.home, database_url=settings.database_url, plans=PLANS_JSON)
    outputs.add_creator(store, "ana", "pro", "GB", PLANS)
    out = make_output(store, "ana")
    for _ in range(2):
        outputs.authorise_download(store, settings_pro, out.output_id, "ana")
    with pytest.raises(Refused):
        outputs.authorise_download(store, settings_pro, out.output_id, "ana")
    assert [e["kind"] for e in outputs.events(store, output_id=out.output_id)] == ["download", "download"]
    assert outputs.downloads_in_month(store, "ana", datetime(2026, 12, 5, tzinfo=UTC)) == 0
    files = copy_for_download(store, out, tmp_path / "dl")
    assert sorted(f.name for f in files) == ["OUT-1.mid", "OUT-1.wav"]
    assert (tmp_path / "dl" / "OUT-1.mid").read_bytes() == b"MThd-fake"


PLANS_JSON = '{"free": {"downloads_per_month": 0}, "pro": {"downloads_per_month": 2}}'


def test_a_free_creator_cannot_download_and_nothing_is_recorded(store: Store, settings: Settings) -> None:
    outputs.add_creator(store, "bo", "free", "US", PLANS)
    out = make_output(store, "bo")
    with pytest.raises(Refused):
        outputs.authorise_download(
            store,
            Settings(home=settings.home, database_url=settings.database_url, plans=PLANS_JSON),
            out.output_id,
            "bo",
        )
    assert outputs.events(store) == []


def test_another_creators_output_is_not_found(store: Store, settings: Settings) -> None:
    outputs.add_creator(store, "ana", "pro", "GB", PLANS)
    outputs.add_creator(store, "eve", "pro", "GB", PLANS)
    out = make_output(store, "ana")
    with pytest.raises(NotFound, match="not found"):
        outputs.authorise_download(store, settings, out.output_id, "eve")


def test_a_play_event_sent_twice_counts_once(store: Store) -> None:
    creator = outputs.add_creator(store, "ana", "free", "GB", PLANS)
    out = make_output(store, "ana")
    assert outputs.record_event(store, "play", out, creator, at=store.clock(), event_id="e-1")
    assert not outputs.record_event(store, "play", out, creator, at=store.clock(), event_id="e-1")
    assert len(outputs.events(store)) == 1
    with pytest.raises(ValidationError, match="kind"):
        outputs.record_event(store, "sale", out, creator, at=store.clock())


def test_creators_are_validated_and_registered_once(store: Store) -> None:
    with pytest.raises(ValidationError, match="plan"):
        outputs.add_creator(store, "x", "gold", "GB", PLANS)
    with pytest.raises(ValidationError, match="territory"):
        outputs.add_creator(store, "x", "free", "XX", PLANS)
    assert outputs.add_creator(store, "x", "free", "gb", PLANS) == outputs.add_creator(store, "x", "free", "GB", PLANS)
    with pytest.raises(ValidationError, match="exists"):
        outputs.add_creator(store, "x", "pro", "GB", PLANS)
