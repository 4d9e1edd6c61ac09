"""A resident guard: its index memory-mapped from disk, its catalog listing read again only when the
registry changes, many files checked in one call."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from accord.attribution.guard import Guard
from accord.attribution.guard import audio as guard_audio
from accord.attribution.guard import check as guard_check
from accord.cli import app
from accord.registry.store import Store
from accord.settings import Settings
from tests.test_guard import import_catalog, isrc, midi_bytes, symbolic_only, tune


@pytest.fixture
def fresh_process() -> Iterator[None]:
    """Forget what this process holds (as a new CLI process would), before and after the test."""
    guard_check._LOADED.clear()
    guard_audio._LISTINGS.clear()
    yield
    guard_check._LOADED.clear()
    guard_audio._LISTINGS.clear()


def _catalog(store: Store, tmp_path: Path, n: int = 4) -> None:
    import_catalog(store, tmp_path / "d", [(f"Tune {i}", "midi", midi_bytes(*tune(10 + i))) for i in range(n)])


def test_a_saved_index_is_memory_mapped_and_checks_as_the_one_just_built(
    store: Store, settings: Settings, tmp_path: Path, fresh_process: None
) -> None:
    _catalog(store, tmp_path)
    settings = symbolic_only(settings)
    copy = midi_bytes(*tune(12))
    built = Guard.for_store(store, settings)
    first = built.verdict(midi=copy)
    guard_check._LOADED.clear()  # as a new process: from the saved folder
    guard_audio._LISTINGS.clear()
    loaded = Guard.for_store(store, settings)
    assert isinstance(loaded.index.gram_keys, np.memmap) and isinstance(loaded.index.pitches, np.memmap)
    assert not loaded.index.gram_keys.flags.writeable  # read-only pages, shared between processes
    again = loaded.verdict(midi=copy)
    assert first.to_dict() == again.to_dict()
    assert again.blocked and again.worst is not None and again.worst.isrc == isrc(3)


def test_the_listing_is_kept_while_the_registry_is_unchanged_and_read_again_after_a_delivery(
    store: Store, settings: Settings, tmp_path: Path, fresh_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _catalog(store, tmp_path, n=3)
    settings = symbolic_only(settings)
    assert len(Guard.for_store(store, settings).index.pieces) == 3
    reads: list[int] = []
    real = guard_audio.read_guard_catalog

    def counting(s: Store, st: Settings) -> guard_audio.GuardCatalog:
        reads.append(1)
        return real(s, st)

    monkeypatch.setattr(guard_audio, "read_guard_catalog", counting)
    guard_audio._LISTINGS.clear()  # a new process: the listing comes from its file
    assert len(Guard.for_store(store, settings).index.pieces) == 3
    assert reads == []  # nothing recorded since: no snapshot of the registry
    import_catalog(store, tmp_path / "d2", [(f"Tune {i}", "midi", midi_bytes(*tune(10 + i))) for i in range(5)])
    guard = Guard.for_store(store, settings)
    assert reads == [1] and len(guard.index.pieces) == 5


def test_a_listing_saved_by_a_clock_ahead_of_the_registry_is_not_trusted(
    store: Store, settings: Settings, tmp_path: Path, fresh_process: None
) -> None:
    _catalog(store, tmp_path, n=2)
    settings = symbolic_only(settings)
    ahead = Store.open(settings, migrate=False)  # the real clock: weeks after the test store's
    try:
        assert len(Guard.for_store(ahead, settings).index.pieces) == 2
    finally:
        ahead.close()
    import_catalog(store, tmp_path / "d2", [(f"Tune {i}", "midi", midi_bytes(*tune(10 + i))) for i in range(3)])
    guard_audio._LISTINGS.clear()
    assert len(Guard.for_store(store, settings).index.pieces) == 3


def test_a_damaged_index_folder_is_built_again_never_trusted(
    store: Store, settings: Settings, tmp_path: Path, fresh_process: None
) -> None:
    _catalog(store, tmp_path, n=3)
    settings = symbolic_only(settings)
    Guard.for_store(store, settings)
    (folder,) = (settings.cache_dir / "guard").glob("symbolic-*")
    (folder / "postings.npy").write_bytes(b"not an array")
    guard_check._LOADED.clear()
    guard = Guard.for_store(store, settings)
    assert guard.verdict(midi=midi_bytes(*tune(11))).blocked
    listing = settings.cache_dir / "guard"
    (listing_file,) = listing.glob("catalog-*.json")
    listing_file.write_text("{not json", encoding="utf-8")
    guard_check._LOADED.clear()
    guard_audio._LISTINGS.clear()
    assert len(Guard.for_store(store, settings).index.pieces) == 3


def test_many_files_in_one_call_one_verdict_each_exit_1_if_any_is_blocked(
    store: Store, settings: Settings, tmp_path: Path, fresh_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _catalog(store, tmp_path, n=3)
    monkeypatch.setenv("ACCORD_GUARD_AUDIO", "false")
    copy, original = tmp_path / "copy.mid", tmp_path / "original.mid"
    copy.write_bytes(midi_bytes(*tune(11)))
    original.write_bytes(midi_bytes(*tune(901)))
    runner = CliRunner()
    result = runner.invoke(app, ["guard", "check", str(original), str(copy), "--json"])
    assert result.exit_code == 1, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    assert [(Path(r["file"]).name, r["status"]) for r in lines] == [("original.mid", "clear"), ("copy.mid", "blocked")]
    assert lines[1]["closest"][0]["isrc"] == isrc(2)
    clear = runner.invoke(app, ["guard", "check", str(original), str(original)])
    assert clear.exit_code == 0, clear.output
    assert clear.output.count("CLEAR") == 2
    # one file: the same single JSON object as before
    single = runner.invoke(app, ["guard", "check", str(copy), "--json"])
    assert single.exit_code == 1 and json.loads(single.output)["status"] == "blocked"


def test_a_bad_file_among_many_stops_the_call_before_any_check(
    store: Store, settings: Settings, tmp_path: Path, fresh_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _catalog(store, tmp_path, n=2)
    monkeypatch.setenv("ACCORD_GUARD_AUDIO", "false")
    good, junk = tmp_path / "good.mid", tmp_path / "junk.txt"
    good.write_bytes(midi_bytes(*tune(11)))
    junk.write_text("hello")
    runner = CliRunner()
    for bad in (junk, tmp_path / "missing.mid"):
        result = runner.invoke(app, ["guard", "check", str(good), str(bad)])
        assert result.exit_code == 2, result.output
        assert bad.name in result.output and "CLEAR" not in result.output and "BLOCKED" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    shutil.rmtree(settings.cache_dir / "guard", ignore_errors=True)
