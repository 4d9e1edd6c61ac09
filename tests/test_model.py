"""The music model: tokenizer round trips, conditions, training on a manifest only, resuming, sampling."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import symusic
import torch

from accord.datasets.loader import ManifestLoader
from accord.datasets.manifest import Manifest, ManifestHeader, ManifestItem
from accord.datasets.merkle import MerkleTree
from accord.errors import Conflict, ValidationError
from accord.model.conditions import TONICS, estimate_key
from accord.model.data import TokenizedPiece, Windows, batch_seed
from accord.model.gpt import GPT, PRESETS
from accord.model.sample import generate, load_model
from accord.model.tokenizer import MusicTokenizer, parse_midi
from accord.model.train import train
from accord.registry.entities import Catalog, Recording, Use
from accord.registry.media import MediaStore, TamperedMedia
from accord.timeutil import parse_instant

TPQ = 480
MAJOR = (0, 2, 4, 5, 7, 9, 11, 12)
HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11, 12)


def midi_bytes(
    notes: list[tuple[float, float, int]],
    *,
    program: int = 0,
    tempo: float = 120.0,
    meter: tuple[int, int] = (4, 4),
) -> bytes:
    """A one-track MIDI file of ``(onset in quarters, duration in quarters, pitch)`` notes."""
    score = symusic.Score(TPQ)
    score.tempos.append(symusic.Tempo(0, qpm=tempo))
    score.time_signatures.append(symusic.TimeSignature(0, *meter))
    track = symusic.Track(program=program)
    for onset, duration, pitch in notes:
        track.notes.append(symusic.Note(round(onset * TPQ), round(duration * TPQ), pitch, 80))
    score.tracks.append(track)
    return bytes(score.dumps_midi())


def tune(tonic: int, scale: tuple[int, ...], *, bars: int = 8, program: int = 0, tempo: float = 120.0) -> bytes:
    """Eighth-note runs up and down a scale with a held tonic under each bar: clearly in one key."""
    notes = []
    for bar in range(bars):
        run = scale if bar % 2 == 0 else scale[::-1]
        notes += [(bar * 4 + i * 0.5, 0.5, 60 + tonic + step) for i, step in enumerate(run)]
        notes.append((bar * 4, 4.0, 48 + tonic))
    return midi_bytes(notes, program=program, tempo=tempo)


# (isrc, genre, program, tonic, scale, tempo): two styles with their own instruments
PIECES = [
    ("ZZTST2600001", "reel", 73, 2, MAJOR, 150.0),
    ("ZZTST2600002", "reel", 73, 7, MAJOR, 150.0),
    ("ZZTST2600003", "reel", 73, 9, MAJOR, 150.0),
    ("ZZTST2600004", "air", 40, 9, HARMONIC_MINOR, 70.0),
    ("ZZTST2600005", "air", 40, 4, HARMONIC_MINOR, 70.0),
    ("ZZTST2600006", "air", 40, 2, HARMONIC_MINOR, 70.0),
    ("ZZTST2600007", "reel", 73, 0, MAJOR, 150.0),
    ("ZZTST2600008", "air", 40, 7, HARMONIC_MINOR, 70.0),
]


def build_training_set(root: Path) -> tuple[Manifest, ManifestLoader, Catalog, MediaStore]:
    """A manifest of the synthetic pieces, their files in a media store, a catalog naming some keys."""
    media = MediaStore(root / "media")
    items, recordings = [], []
    for isrc, genre, program, tonic, scale, tempo in PIECES:
        data = tune(tonic, scale, program=program, tempo=tempo)
        sha = media.put_bytes(data)
        items.append(
            ManifestItem(
                isrc=isrc,
                media_sha256=sha,
                media_kind="midi",
                size=len(data),
                duration_ms=16_000,
                agreements=(),
                master_owners=("P-L",),
                publishers=("P-P",),
                standing=("P-L", "P-P"),
                works=("W-1",),
                genre=genre,
            )
        )
        mode = "major" if scale == MAJOR else "minor"
        metadata = (("key", f"{TONICS[tonic]} {mode}"),) if tonic % 2 == 0 else ()
        recordings.append(Recording(isrc=isrc, title=isrc, genre=genre, metadata=metadata))
    header = ManifestHeader(Use.TRAIN, parse_instant("2026-11-01T00:00:00Z", field="as_of"), "US")
    manifest = Manifest(header, tuple(items), (), MerkleTree([i.leaf() for i in items]).root.hex())
    return manifest, ManifestLoader(manifest, media), Catalog.of(recordings=recordings), media


@pytest.fixture(scope="module")
def training_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, ManifestLoader, Catalog, MediaStore]:
    return build_training_set(tmp_path_factory.mktemp("set"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, training_set):
    manifest, loader, catalog, _ = training_set
    out = tmp_path_factory.mktemp("model")
    events: list[dict] = []
    result = train(
        manifest, loader, catalog, out, preset="tiny", steps=60, eval_every=10, batch_size=8, progress=events.append
    )
    return result, events


# tokenizer ------------------------------------------------------------------------------


def test_round_trip_keeps_every_note_pitch_and_onset():
    tok = MusicTokenizer.build(["reel"])
    notes = [(0.0, 1.0, 60), (1.0, 0.5, 64), (1.5, 0.5, 67), (2.0, 2.0, 72), (4.25, 0.25, 71), (5.0, 3.0, 55)]
    ids = tok.encode(midi_bytes(notes, program=73), style="reel")
    score = parse_midi(tok.decode(ids))
    (track,) = score.tracks
    tpq = score.ticks_per_quarter
    got = sorted((n.time / tpq, n.pitch, n.duration / tpq) for n in track.notes)
    assert [(t, p) for t, p, _ in got] == sorted((onset, pitch) for onset, _, pitch in notes)
    for (_, _, duration), (_, want, _) in zip(got, sorted(notes), strict=True):
        assert abs(duration - want) <= 0.125  # durations quantised to a 32nd note at worst
    assert track.program == 73


def test_every_sequence_starts_with_style_key_tempo_and_length_and_ends_with_eos():
    tok = MusicTokenizer.build(["reel", "slip jig"])
    ids = tok.encode(tune(7, MAJOR, bars=8, tempo=150), style="slip jig", key="G major")
    names = [tok.token_name(i) for i in ids[:4]]
    assert names == ["STYLE_slip-jig", "KEY_G_major", "TEMPO_fast", "LEN_8"]
    assert tok.token_name(ids[4]) == "Bar_None"
    assert ids[-1] == tok.eos_id
    unknown_style = tok.encode(tune(7, MAJOR, tempo=100), style="polka")
    assert [tok.token_name(i) for i in unknown_style[:3]] == ["STYLE_unknown", "KEY_G_major", "TEMPO_moderate"]


def test_key_is_estimated_from_pitch_classes_when_the_catalog_has_none():
    assert estimate_key(parse_midi(tune(0, MAJOR))) == "C major"
    assert estimate_key(parse_midi(tune(9, HARMONIC_MINOR))) == "A minor"
    assert estimate_key(parse_midi(tune(2, MAJOR))) == "D major"


def test_condition_ids_cover_24_keys_modes_and_unknowns():
    tok = MusicTokenizer.build(["air"])
    assert tok.condition_ids("air", "A dorian", 60, 40) == tok.condition_ids("air", "A minor", 79, 64)
    assert tok.condition_ids("air", "F# minor", None, None) == tok.condition_ids("air", "Gb minor", None, None)
    names = {tok.token_name(i) for i in range(tok.condition_offset, tok.vocab_size)}
    assert len([n for n in names if n.startswith("KEY_")]) == 25
    assert {"TEMPO_slow", "TEMPO_moderate", "TEMPO_lively", "TEMPO_fast", "TEMPO_unknown"} <= names
    with pytest.raises(ValidationError, match="key"):
        tok.condition_ids("air", "H major", None, None)
    assert 450 <= tok.vocab_size <= 560


def test_tokenizer_saves_and_loads_to_the_same_vocabulary(tmp_path):
    tok = MusicTokenizer.build(["reel", "air"]).with_style_stats([("reel", [73], 150.0), ("reel", [73, 21], 140.0)])
    assert tok.style_programs == {"reel": (21, 73)}
    assert tok.style_ensembles == {"reel": (((21, 73), 1), ((73,), 1))}  # most common first, then by programs
    tok.save(tmp_path)
    again = MusicTokenizer.load(tmp_path)
    assert again == tok
    assert again.to_dict() == tok.to_dict()
    assert again.to_dict()["versions"]["miditok"]
    tampered = json.loads((tmp_path / "tokenizer.json").read_text())
    tampered["vocab"]["Bar_None"] = 999
    with pytest.raises(ValidationError, match="vocabulary"):
        MusicTokenizer.from_dict(tampered)


def test_training_windows_start_on_a_bar_after_the_conditions_and_are_filled_with_whole_pieces():
    tok = MusicTokenizer.build(["reel", "air"])
    pieces = [
        TokenizedPiece(
            isrc,
            genre,
            np.asarray(ids, dtype=np.int32),
            np.flatnonzero(np.asarray(ids) == tok.bar_id),
            "C major",
            "estimated",
            120.0,
            frozenset({program}),
        )
        for isrc, genre, program, tonic, scale, tempo in PIECES[:3]
        for ids in [tok.encode(tune(tonic, scale, bars=2, program=program, tempo=tempo), style=genre)]
    ]
    windows = Windows(pieces, 128, tok)
    assert len(windows) == 3 * 2  # every bar of every piece can start a window
    x, y = windows.random_batch(batch_seed(0, 0), 4, condition_dropout=0.0)
    assert x.shape == y.shape == (4, 128)
    for row in x.tolist():
        assert [tok.token_name(i).split("_")[0] for i in row[:5]] == ["STYLE", "KEY", "TEMPO", "LEN", "Bar"]
        assert tok.pad_id not in row  # short pieces are followed by whole pieces, not padding
    assert not (y >= tok.condition_offset).any()  # conditions are never targets
    again = windows.random_batch(batch_seed(0, 0), 4, condition_dropout=0.0)
    assert torch.equal(again[0], x)
    dropped, _ = windows.random_batch(batch_seed(0, 0), 4, condition_dropout=1.0)
    unknown = set(tok.unknown_condition_ids())
    assert {i for i in dropped.flatten().tolist() if i >= tok.condition_offset} <= unknown


def test_a_transposed_sample_moves_every_note_and_its_key_by_one_interval_and_nothing_else():
    tok = MusicTokenizer.build(["reel", "air"])
    ids = tok.encode(tune(2, MAJOR, bars=2, program=73, tempo=120.0), style="reel", key="D major")
    piece = TokenizedPiece(
        "ZZ",
        "reel",
        np.asarray(ids, dtype=np.int32),
        np.flatnonzero(np.asarray(ids) == tok.bar_id),
        "D major",
        "catalog",
        120.0,
        frozenset({73}),
    )
    windows = Windows([piece], 64, tok)
    plain, _ = windows.random_batch(batch_seed(3, 7), 16, condition_dropout=0.0)
    again, _ = windows.random_batch(batch_seed(3, 7), 16, condition_dropout=0.0, transpose=0.0)
    assert torch.equal(plain, again)  # no transposition asked: the same batch (old runs keep their hashes)
    moved, targets = windows.random_batch(batch_seed(3, 7), 16, condition_dropout=0.0, transpose=1.0)
    names = [[tok.token_name(i) for i in row] for row in moved.tolist()]
    seen = set()
    for before, after in zip(plain.tolist(), names, strict=True):
        before_names = [tok.token_name(i) for i in before]
        pitches = [(int(a[6:]), int(b[6:])) for a, b in zip(before_names, after, strict=True) if a.startswith("Pitch_")]
        shifts = {b - a for a, b in pitches}
        assert len(shifts) == 1  # one interval for the whole sample
        k = shifts.pop()
        assert -6 <= k <= 5
        seen.add(k)
        key_before = next(n for n in before_names if n.startswith("KEY_"))
        key_after = next(n for n in after if n.startswith("KEY_"))
        assert key_after == f"KEY_{TONICS[(2 + k) % 12]}_major" and key_before == "KEY_D_major"
        others = [(a, b) for a, b in zip(before_names, after, strict=True) if not a.startswith(("Pitch_", "KEY_"))]
        assert all(a == b for a, b in others)  # bars, positions, durations, programs untouched
    assert len(seen) > 3  # the interval varies from sample to sample
    assert (targets[:, :-1] == moved[:, 1:]).logical_or(targets[:, :-1] == -1).all()  # targets are the moved inputs


# network --------------------------------------------------------------------------------


def test_kv_cache_gives_the_same_logits_as_a_full_forward_pass():
    torch.manual_seed(0)
    model = GPT(replace(PRESETS["tiny"], block_size=32)).eval()
    idx = torch.randint(0, 500, (1, 20))
    with torch.no_grad():
        full, loss = model(idx)
        cache = model.new_cache(1)
        stepped = [model.forward_step(idx[:, :12], cache)]
        stepped += [model.forward_step(idx[:, t : t + 1], cache) for t in range(12, 20)]
        chunked_cache = model.new_cache(1)
        model.forward_step(idx[:, :5], chunked_cache)
        chunked = model.forward_step(idx[:, 5:20], chunked_cache)
    assert loss is None
    assert full.shape == (1, 20, model.config.vocab_size)
    torch.testing.assert_close(torch.cat(stepped), full[0, 11:], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(chunked[0], full[0, -1], atol=1e-5, rtol=1e-4)
    assert model.wte.weight is model.lm_head.weight


# training -------------------------------------------------------------------------------


def test_a_tiny_model_learns_the_synthetic_tunes(trained):
    result, events = trained
    curve = result.card["loss_curve"]
    assert [p["step"] for p in curve] == [10, 20, 30, 40, 50, 60]
    first = sum(p["train_loss"] for p in curve[:2]) / 2
    last = sum(p["train_loss"] for p in curve[-2:]) / 2
    assert last < first - 1.0
    assert result.final_val_loss < curve[0]["val_loss"]
    assert [e["stage"] for e in events][:2] == ["verify", "tokenize"]
    assert events[-1]["stage"] == "done"


def test_the_model_card_names_the_manifest_licensors_and_how_it_was_trained(trained, training_set):
    result, _ = trained
    manifest = training_set[0]
    card = json.loads((result.out_dir / "model_card.json").read_text())
    assert card["manifest"]["root"] == manifest.root
    assert card["manifest"]["items_per_master_licensor"] == {"P-L": 8}
    assert card["manifest"]["genres"] == {"air": 4, "reel": 4}
    assert card["model"]["parameters"] > 0 and card["seed"] == 0
    assert card["training"]["tokens_seen"] == 60 * 8 * PRESETS["tiny"].block_size
    assert card["hardware"]["dtype"] in {"bfloat16", "float32"}
    assert card["code"]["accord"] and card["code"]["git_commit"]
    assert card["data"]["keys_from_catalog"] == 4 and card["data"]["keys_estimated"] == 4
    assert card["data"]["val_pieces"] >= 1 and card["data"]["train_pieces"] + card["data"]["val_pieces"] == 8
    assert card["data"]["style_programs"] == {"air": [40], "reel": [73]}
    assert card["data"]["style_ensembles"] == {"air": [[[40], 4]], "reel": [[[73], 4]]}
    assert (result.out_dir / "loss.png").stat().st_size > 1000
    assert "P-L" in (result.out_dir / "model_card.md").read_text()
    ckpt = torch.load(result.out_dir / "ckpt.pt", weights_only=True)
    assert ckpt["manifest_root"] == manifest.root and ckpt["step"] == 60


def test_training_refuses_a_file_whose_hash_does_not_match(tmp_path):
    manifest, loader, catalog, media = build_training_set(tmp_path)
    media.path_for(manifest.items[3].media_sha256).write_bytes(b"MThd not the licensed file")
    out = tmp_path / "model"
    with pytest.raises(TamperedMedia, match=manifest.items[3].isrc):
        train(manifest, loader, catalog, out, preset="tiny", steps=5)
    assert not (out / "ckpt.pt").exists()
    assert not out.exists() or not any(out.iterdir())


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_from_its_checkpoint_and_matches_an_uninterrupted_one(tmp_path, training_set):
    manifest, loader, catalog, _ = training_set
    whole = train(manifest, loader, catalog, tmp_path / "whole", preset="tiny", steps=30, eval_every=10)

    def stop_at_step_20(event: dict) -> None:
        if event["stage"] == "train" and event["step"] == 20:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(
            manifest,
            loader,
            catalog,
            tmp_path / "cut",
            preset="tiny",
            steps=30,
            eval_every=10,
            checkpoint_every_s=0,
            progress=stop_at_step_20,
        )
    assert torch.load(tmp_path / "cut" / "ckpt.pt", weights_only=True)["step"] == 19
    events: list[dict] = []
    resumed = train(
        manifest, loader, catalog, tmp_path / "cut", preset="tiny", steps=30, eval_every=10, progress=events.append
    )
    assert {"stage": "resume", "step": 19} in events
    assert resumed.steps == 30
    assert resumed.card["loss_curve"] == [
        {**p, "seconds": q["seconds"]}
        for p, q in zip(whole.card["loss_curve"], resumed.card["loss_curve"], strict=True)
    ]
    assert resumed.final_val_loss == whole.final_val_loss


def test_a_checkpoint_of_another_run_is_refused_naming_every_difference_and_nothing_is_trained(tmp_path, training_set):
    from accord.errors import Conflict

    manifest, loader, catalog, _ = training_set
    train(manifest, loader, catalog, tmp_path, preset="tiny", steps=2, eval_every=1)
    before = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    with pytest.raises(Conflict, match=r"cannot resume: its seed is 0, not 1; its lr is 0\.002, not 0\.001"):
        train(manifest, loader, catalog, tmp_path, preset="tiny", steps=4, eval_every=1, seed=1, lr=1e-3)
    after = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert after["step"] == before["step"] == 2
    assert all(torch.equal(after["model"][k], v) for k, v in before["model"].items())


def test_a_larger_step_budget_continues_a_finished_run(tmp_path, training_set):
    manifest, loader, catalog, _ = training_set
    first = train(manifest, loader, catalog, tmp_path, preset="tiny", steps=20, eval_every=10)
    assert first.steps == 20
    again = train(manifest, loader, catalog, tmp_path, preset="tiny", steps=20, eval_every=10)
    assert again.steps == 20 and again.card["loss_curve"] == first.card["loss_curve"]
    more = train(manifest, loader, catalog, tmp_path, preset="tiny", steps=30, eval_every=10)
    assert [p["step"] for p in more.card["loss_curve"]] == [10, 20, 30]
    with pytest.raises(Conflict, match="seed"):
        train(manifest, loader, catalog, tmp_path, preset="tiny", steps=40, seed=1)


# sampling -------------------------------------------------------------------------------


def test_generation_is_deterministic_under_a_seed_and_keeps_the_style_instruments(trained):
    loaded = load_model(trained[0].out_dir)
    a = generate(loaded, style="reel", bars=4, seed=7, max_tokens=300)
    b = generate(loaded, style="reel", bars=4, seed=7, max_tokens=300)
    assert a.midi == b.midi and a.token_ids == b.token_ids
    assert a.n_tokens > 0 and a.tokens_per_second > 0
    assert a.conditions[0] == "STYLE_reel" and a.programs == (73,)
    tok = loaded.tokenizer
    programs = {tok.program_of(t) for t in a.token_ids} - {None}
    assert programs <= {73}
    assert a.bars <= 4
    other = generate(loaded, style="reel", bars=4, seed=7, max_tokens=300, allowed_programs={0})
    assert {tok.program_of(t) for t in other.token_ids} - {None} <= {0}
    assert {t.program for t in parse_midi(other.midi).tracks} <= {0}


def test_generation_continues_a_prime(trained):
    loaded = load_model(trained[0].out_dir)
    prime = tune(7, MAJOR, bars=4, program=73, tempo=150)
    piece = generate(loaded, style="reel", bars=6, prime_midi=prime, prime_bars=2, seed=1, max_tokens=200)
    tok = loaded.tokenizer
    prime_body = tok.encode(prime, style="reel")[4:]
    second_bar = [i for i, t in enumerate(prime_body) if t == tok.bar_id][2]
    assert list(piece.token_ids[4 : 4 + second_bar]) == prime_body[:second_bar]
    assert piece.conditions[1] == "KEY_G_major"


def test_a_loaded_model_is_the_trained_one(trained):
    result, _ = trained
    loaded = load_model(result.out_dir)
    assert not loaded.model.training and not loaded.stepper.training
    assert loaded.card["final_val_loss"] == result.final_val_loss
    assert loaded.tokenizer.style_programs == {"air": (40,), "reel": (73,)}
    ckpt = torch.load(result.out_dir / "ckpt.pt", weights_only=True)
    for name, tensor in loaded.model.state_dict().items():
        torch.testing.assert_close(tensor, ckpt["model"][name])


# sampling constraints, snapshots, evaluation ---------------------------------------------


def test_training_keeps_each_style_and_programs_pitch_range_with_the_tokenizer(trained):
    result, _ = trained
    tok = load_model(result.out_dir).tokenizer
    # the training pieces only (validation is held out): tonic + 48 in the bass up to tonic + 72 on top
    held = set(result.card["data"]["val_isrcs"])
    for style, program in (("reel", 73), ("air", 40)):
        tonics = [t for isrc, genre, _, t, _, _ in PIECES if genre == style and isrc not in held]
        assert tok.style_pitch_ranges[style] == {program: (48 + min(tonics), 72 + max(tonics))}
        assert tok.pitch_range(style) == (48 + min(tonics), 72 + max(tonics))
    assert set(tok.style_pitch_ranges) == {"reel", "air"}
    assert tok.pitch_range("reel", [0]) is None and tok.pitch_range("waltz") is None
    again = MusicTokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.style_pitch_ranges == tok.style_pitch_ranges
    older = {k: v for k, v in tok.to_dict().items() if k != "style_pitch_ranges"}  # a model from before ranges
    assert MusicTokenizer.from_dict(older).style_pitch_ranges == {}


def test_a_generated_piece_never_leaves_its_style_pitch_range(trained):
    loaded = load_model(trained[0].out_dir)
    narrow = replace(loaded.tokenizer, style_pitch_ranges={"reel": {73: (62, 65)}})
    constrained = replace(loaded, tokenizer=narrow)
    pitches: set[int] = set()
    for seed in range(3):  # hot, untruncated sampling: without the mask, pitches go everywhere
        piece = generate(
            constrained, style="reel", bars=4, seed=seed, temperature=1.5, top_k=None, top_p=None, max_tokens=300
        )
        pitches |= {p for _, p in narrow.note_pitches(piece.token_ids)}
    assert pitches and pitches <= {62, 63, 64, 65}
    free = [
        generate(
            loaded,
            style="reel",
            bars=4,
            seed=s,
            temperature=1.5,
            top_k=None,
            top_p=None,
            keep_pitch_range=False,
            max_tokens=300,
        )
        for s in range(3)
    ]
    assert {p for piece in free for _, p in narrow.note_pitches(piece.token_ids)} - {62, 63, 64, 65}


def test_a_prime_widens_the_pitch_range_to_its_own_notes(trained):
    loaded = load_model(trained[0].out_dir)
    narrow = replace(loaded, tokenizer=replace(loaded.tokenizer, style_pitch_ranges={"reel": {73: (62, 65)}}))
    prime = tune(7, MAJOR, bars=2, program=73, tempo=150)  # 55 .. 79
    piece = generate(
        narrow,
        style="reel",
        bars=4,
        prime_midi=prime,
        prime_bars=2,
        seed=3,
        temperature=1.5,
        top_k=None,
        max_tokens=300,
    )
    assert {p for _, p in narrow.tokenizer.note_pitches(piece.token_ids)} <= set(range(55, 80))


def test_top_p_keeps_only_the_nucleus_and_is_deterministic_under_a_seed(trained):
    from accord.model.sample import _sample

    logits = torch.tensor([4.0, 2.0, 1.0, 0.0, -1.0])  # softmax: 0.83, 0.11, 0.04, ...
    bias = torch.zeros(5)
    draws = {_sample(logits, bias, 1.0, None, 0.9, torch.Generator().manual_seed(s)) for s in range(200)}
    assert draws == {0, 1}  # 0.83 < 0.9, so the second token is in the nucleus; the rest never
    assert {_sample(logits, bias, 1.0, None, 0.5, torch.Generator().manual_seed(s)) for s in range(50)} == {0}
    assert len({_sample(logits, bias, 1.0, None, None, torch.Generator().manual_seed(s)) for s in range(200)}) >= 4
    with pytest.raises(ValidationError, match="top_p"):
        generate(load_model(trained[0].out_dir), style="reel", bars=2, top_p=0.0)
    loaded = load_model(trained[0].out_dir)
    a = generate(loaded, style="air", bars=4, seed=11, top_p=0.8, max_tokens=300)
    b = generate(loaded, style="air", bars=4, seed=11, top_p=0.8, max_tokens=300)
    assert a.token_ids == b.token_ids and a.midi == b.midi


def test_training_saves_weight_snapshots_for_attribution(trained, tmp_path):
    from accord.model.checkpoint import list_snapshots, save_snapshot

    result, events = trained
    path = result.out_dir / "snapshots" / "step-0000060.pt"
    snap = torch.load(path, weights_only=True)
    assert snap["step"] == 60 and set(snap) == {"model", "step"}
    ckpt = torch.load(result.out_dir / "ckpt.pt", weights_only=True)
    for name, tensor in ckpt["model"].items():
        torch.testing.assert_close(snap["model"][name], tensor)
    assert any(e.get("snapshot") == str(path) for e in events if e["stage"] == "checkpoint")
    weights = {"w": torch.ones(2)}
    for step in (5, 1, 30, 12, 7, 100, 2):
        save_snapshot(tmp_path, step, weights)
    assert [p.name for p in list_snapshots(tmp_path)] == [f"step-{s:07d}.pt" for s in (5, 7, 12, 30, 100)]
    with pytest.raises(ValidationError, match="keep"):
        save_snapshot(tmp_path, 1, weights, keep=0)


def test_evaluation_matches_every_system_to_the_held_out_pieces_and_reports_each_metric(trained, training_set):
    from accord.media.compare import COMPARE_METRICS
    from accord.model.evaluate import evaluate_model

    manifest, loader, _, _ = training_set
    result = evaluate_model(load_model(trained[0].out_dir), manifest, loader, model_id="tiny", pieces=2, seed=3)
    assert result.held_out == 1
    assert set(result.music) == {"model", "markov", "random"}
    assert set(result.wins) == {*COMPARE_METRICS, "val_loss"}
    assert (
        result.wins["val_loss"] and result.likelihood["model"]["val_loss"] < result.likelihood["untrained"]["val_loss"]
    )
    for system in ("model", "markov", "random"):
        music = result.music[system]
        assert music["generated_pieces"] == 2 and music["reference_pieces"] == 1
        assert all(music[m] >= 0 for m in COMPARE_METRICS)
    # every system plays the held-out piece's length: the baselines its seconds, the model its 8 bars
    reference = result.music["model"]["reference_seconds"]
    for system in ("markov", "random"):
        assert result.music[system]["generated_seconds"] == pytest.approx(reference, abs=1.0)
    assert result.music["model"]["generated_seconds"] <= reference + 1.0


def test_time_only_moves_forward_inside_a_bar_of_a_generated_piece(trained):
    loaded = load_model(trained[0].out_dir)
    tok = loaded.tokenizer
    for seed in range(3):  # hot, untruncated sampling: an undertrained model writes positions in any order
        piece = generate(
            loaded, style="reel", bars=4, seed=seed, temperature=1.5, top_k=None, top_p=None, max_tokens=300
        )
        last = -1
        for name in (tok.token_name(t) for t in piece.token_ids):
            if name == "Bar_None":
                last = -1
            elif name.startswith("Position_"):
                assert int(name.removeprefix("Position_")) > last
                last = int(name.removeprefix("Position_"))


def test_the_ngram_baseline_is_moved_into_the_requested_key():
    from accord.media.features import key_estimate
    from accord.model.baselines import transpose_to_key

    melody = tune(0, MAJOR, bars=2)  # C major
    assert key_estimate(transpose_to_key(melody, "D major"))[0] == "D major"
    assert key_estimate(transpose_to_key(melody, "B minor"))[0] == "D major"  # the same signature, mode kept
    assert transpose_to_key(melody, "A minor") == melody  # C major's signature: nothing to move
    assert min(n.pitch for t in parse_midi(transpose_to_key(melody, "Bb major")).tracks for n in t.notes) == 48 - 2
    assert min(n.pitch for t in parse_midi(transpose_to_key(melody, "A major")).tracks for n in t.notes) == 48 - 3


def test_no_more_notes_start_together_than_training_pieces_of_the_style_ever_struck(trained):
    loaded = load_model(trained[0].out_dir)
    tok = loaded.tokenizer
    assert tok.style_max_chord == {"air": 2, "reel": 2}  # each bar starts with the bass note under the run
    solo = replace(loaded, tokenizer=replace(tok, style_max_chord={"reel": 1}))
    chords = []
    for seed in range(6):  # hot, untruncated sampling piles notes up at one instant without the cap
        piece = generate(solo, style="reel", bars=4, seed=seed, temperature=1.5, top_k=None, top_p=None, max_tokens=300)
        chords.append(tok.max_chord(piece.token_ids))
    # never two notes at one instant; and notes were played (a piece of rests alone would prove nothing)
    assert max(chords) == 1 and all(c <= 1 for c in chords), chords
    assert MusicTokenizer.from_dict(tok.to_dict()).style_max_chord == tok.style_max_chord


def test_a_generated_piece_ends_at_its_last_bar_line() -> None:
    from symusic import Note, Score, TimeSignature, Track

    from accord.model.sample import end_at_last_bar

    score = Score(480)
    score.time_signatures.append(TimeSignature(0, 3, 4))  # bars of 1,440 ticks
    track = Track(program=0)
    for time, duration in ((0, 480), (2400, 900), (2880, 480), (4400, 200)):
        track.notes.append(Note(time, duration, 60, 80))
    score.tracks.append(track)
    end_at_last_bar(score, 2)
    assert [(n.time, n.duration) for n in score.tracks[0].notes] == [(0, 480), (2400, 480)]
    assert score.end() == 2880
