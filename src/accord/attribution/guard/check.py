"""The replication guard: one object that checks a piece against the whole registry.

:meth:`Guard.for_store` gathers every recording of the registry (licensed or not), builds
or loads the symbolic index (:mod:`.index`) and the audio reference (:mod:`.audio`), and
reads the policy (:mod:`.policy`). :meth:`Guard.verdict` then checks MIDI (symbolic:
n-gram candidates re-scored by alignment) and/or audio (landmark fingerprint) and says
``clear`` or ``blocked``, with the evidence.

:func:`guard_output` is what generation calls for each candidate output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from accord.attribution.guard.align import Passage, align_many
from accord.attribution.guard.audio import AudioSource, fingerprint_all
from accord.attribution.guard.findings import Finding, composition, evalues, find, information_of
from accord.attribution.guard.index import (
    CatalogPiece,
    SymbolicIndex,
    catalog_key,
    encode_midi,
    load_or_build,
)
from accord.attribution.guard.lines import LINE_KINDS
from accord.attribution.guard.ngrams import Encoded
from accord.attribution.guard.policy import GuardPolicy, load_policy
from accord.attribution.guard.significance import significance
from accord.attribution.guard.verdict import BLOCKED, CLEAR, Evidence, GuardVerdict
from accord.media.fingerprint import Fingerprint, FingerprintIndex, fingerprint_file
from accord.registry.store import Store
from accord.settings import Settings

Progress = Callable[[str, int, int], None]
CLOSEST = 5  # works reported per check
CALIBRATION_BARS = 16  # an output's usual length (the studio's default prompt)
DUPLICATE_COVERAGE = 0.6
"""A window (or a whole melody) sharing this share of its notes with one other work marks the pair
as one tune, or a variant of it: on the demo catalog, pairs fall below ~0.5 or above ~0.8, few between."""
MAX_SAME_TUNE = 12  # same-tune pieces passed over per piece (a chorale tune has up to ~10 harmonisations)
_LOADED: dict[tuple[str, str, str], tuple[SymbolicIndex, AudioReference | None]] = {}


@dataclass(frozen=True)
class AudioReference:
    """Fingerprints of the catalog's sound.

    Attributes:
        sources: what each clip is.
        index: their landmarks.
    """

    sources: tuple[AudioSource, ...]
    index: FingerprintIndex


@dataclass(frozen=True)
class Borrowing:
    """How much one catalog piece shares with its closest *other* catalog work.

    Attributes:
        piece: the piece (index into the guard's pieces).
        other: the closest other piece that is not the same tune (``-1``: nothing shared).
        score: the score (bars) of their longest shared passage.
        shared_notes: its notes with the same pitch.
        coverage: ``shared_notes`` over the notes of the window checked.
        same_tune: ``(piece, score)`` of closer pieces passed over as the same tune under
            another title (a duplicate the registry does not link; :meth:`Guard.same_tune`).
        evidence: per line of evidence, ``(kind, best score, query notes, composition)`` over every
            other work that is not the same tune: one draw from its chance distribution.
        significance: ``−log10 E`` of the closest other work under the policy's nulls.
        window_bars: the window's length in bars.
    """

    piece: int
    other: int
    score: float
    shared_notes: int
    coverage: float
    same_tune: tuple[tuple[int, float], ...] = ()
    evidence: tuple[tuple[str, float, int, float], ...] = ()
    significance: float = -99.0
    window_bars: int = 0


def window(line: Encoded, bars: int, rng: np.random.Generator) -> Encoded:
    """``bars`` consecutive bars of ``line`` from a random bar (all of it when shorter), as a query line."""
    first, last = int(line.bars.min()), int(line.bars.max())
    if len(line) == 0 or last - first + 1 <= bars:
        return Encoded(line.pitches, line.rhythm, line.bars, line.onsets, metered=line.metered)
    start = int(rng.integers(first, last - bars + 2))
    keep = (line.bars >= start) & (line.bars < start + bars)
    return Encoded(line.pitches[keep], line.rhythm[keep], line.bars[keep], line.onsets[keep], metered=line.metered)


class Guard:
    """The symbolic index, the audio reference and the policy, ready to check pieces."""

    def __init__(
        self,
        index: SymbolicIndex,
        policy: GuardPolicy,
        audio: AudioReference | None = None,
        *,
        candidates: int = 8,
        works: Sequence[tuple[str, ...]] = (),
        genres: Sequence[str] = (),
    ) -> None:
        self.index = index
        self.policy = policy
        self.audio = audio
        self.candidates = candidates
        # recordings of the same work are one work when measuring borrowing between works
        self.works = tuple(works) if works else tuple(() for _ in index.pieces)
        self.genres = tuple(genres) if genres else tuple("" for _ in index.pieces)
        self._same_tune: dict[tuple[int, int], bool] = {}
        self._melody_entry: dict[int, int] | None = None  # piece -> its melody entry, built on first use

    @classmethod
    def for_store(
        cls,
        store: Store,
        settings: Settings,
        *,
        audio: bool | None = None,
        progress: Progress | None = None,
        policy: GuardPolicy | None = None,
    ) -> Guard:
        """The guard over every recording the registry holds now (cached on disk by catalog hash).

        ``policy``: the thresholds to use (default: the saved policy, :func:`load_policy`); calibration
        passes the defaults, since it replaces whatever policy was saved."""
        catalog = store.snapshot()
        pieces, works, genres, midi_paths, audio_sources = [], [], [], {}, []
        transcribed: dict[str, Path] = {}
        # sorted by ISRC: the index (and its hash) does not depend on storage order
        for isrc in sorted(catalog.recordings):
            rec = catalog.recordings[isrc]
            media = sorted(rec.media, key=lambda m: (m.kind, m.sha256))
            midi = next((m for m in media if m.kind == "midi"), None)
            if midi is not None and store.media.has(midi.sha256):
                pieces.append(CatalogPiece(isrc, rec.title, midi.sha256))
                works.append(tuple(sorted(rec.works)))
                genres.append(rec.genre)
                midi_paths[midi.sha256] = store.media.open_path(midi.sha256)
                audio_sources.append(
                    (AudioSource(isrc, rec.title, midi.sha256, "midi render"), midi_paths[midi.sha256])
                )
            elif settings.guard_transcribe:
                # audio only: its notes, transcribed once (cached), so the symbolic check covers it too
                heard = next((m for m in media if m.kind == "audio" and store.media.has(m.sha256)), None)
                if heard is not None:
                    pieces.append(CatalogPiece(isrc, rec.title, heard.sha256))
                    works.append(tuple(sorted(rec.works)))
                    genres.append(rec.genre)
                    transcribed[heard.sha256] = store.media.open_path(heard.sha256)
            for m in media:
                if m.kind == "audio" and store.media.has(m.sha256):
                    audio_sources.append(
                        (AudioSource(isrc, rec.title, m.sha256, "audio"), store.media.open_path(m.sha256))
                    )

        use_audio = settings.guard_audio if audio is None else audio
        memo_key = (
            str(settings.cache_dir),
            catalog_key(pieces),
            catalog_key([CatalogPiece(s.isrc, s.origin, s.sha256) for s, _ in audio_sources]) if use_audio else "",
        )
        if memo_key not in _LOADED:

            def read(piece: CatalogPiece) -> list[tuple[str, Encoded]]:
                if piece.sha256 in midi_paths:
                    return encode_midi(midi_paths[piece.sha256].read_bytes())
                return encode_midi(transcribed_midi(transcribed[piece.sha256], piece.sha256, settings.cache_dir))

            index = load_or_build(pieces, read, settings.cache_dir, progress)
            reference = None
            if use_audio:
                prints = fingerprint_all(audio_sources, settings.cache_dir, settings.workers, progress)
                reference = AudioReference(tuple(s for s, _ in audio_sources), FingerprintIndex.build(prints))
            if len(_LOADED) >= 4:  # a few catalogs at most (tests, a CLI session): drop the oldest
                _LOADED.pop(next(iter(_LOADED)))
            _LOADED[memo_key] = (index, reference)
        index, reference = _LOADED[memo_key]
        return cls(
            index,
            load_policy(settings) if policy is None else policy,
            reference,
            candidates=settings.guard_candidates,
            works=works,
            genres=genres,
        )

    # -- symbolic ---------------------------------------------------------------------------

    def melody(self, piece: int) -> Encoded | None:
        """The melody line of catalog piece ``piece`` (``None``: it has none)."""
        if self._melody_entry is None:  # one pass over the entries, not one per call (calibration asks per pair)
            idx = self.index
            melodies = np.flatnonzero(idx.entry_kind == LINE_KINDS.index("melody"))
            self._melody_entry = {}
            for e in melodies[::-1].tolist():  # the first melody entry of a piece wins, as before
                self._melody_entry[int(idx.entry_piece[e])] = e
        e = self._melody_entry.get(piece)
        return None if e is None else self.index.entry(e)

    def same_tune(self, a: int, b: int) -> bool:
        """Whether catalog pieces ``a`` and ``b`` are one tune (or a variant of it) under two titles:
        their whole melodies share :data:`DUPLICATE_COVERAGE` of the shorter one's notes. Cached."""
        key = (a, b) if a <= b else (b, a)
        if key not in self._same_tune:
            ma, mb = self.melody(a), self.melody(b)
            same = False
            if ma is not None and mb is not None and len(ma) and len(mb):
                passage = align_many(ma, [mb])[0]
                same = passage is not None and passage.shared_notes / min(len(ma), len(mb)) >= DUPLICATE_COVERAGE
            self._same_tune[key] = same
        return self._same_tune[key]

    def findings(
        self, lines: Sequence[tuple[str, Encoded]], exclude: frozenset[int] = frozenset()
    ) -> dict[int, Finding]:
        """Every retrieved catalog piece's :class:`~.findings.Finding`, with its E-values under the policy."""
        found = find(self.index, lines, self.candidates, exclude, self.policy.scoring)
        notes = len(self.index.pitches)
        return {piece: evalues(f, self.policy.nulls, notes) for piece, f in found.items()}

    def passages(
        self, lines: Sequence[tuple[str, Encoded]], exclude: frozenset[int] = frozenset()
    ) -> dict[int, tuple[Passage, str, str]]:
        """Best passage per catalog piece among the retrieved candidates: piece → (passage, line, catalog line)."""
        found = find(self.index, lines, self.candidates, exclude, self.policy.scoring)
        return {piece: (f.passage, f.query_line, f.catalog_line) for piece, f in found.items()}

    def symbolic_evidence(
        self, lines: Sequence[tuple[str, Encoded]], exclude: frozenset[int] = frozenset()
    ) -> list[Evidence]:
        out = []
        for piece, f in self.findings(lines, exclude).items():
            meta, p = self.index.pieces[piece], f.passage
            strongest = min(f.evalues.items(), key=lambda kv: (kv[1], kv[0]))[0] if f.evalues else ""
            out.append(
                Evidence(
                    isrc=meta.isrc,
                    title=meta.title,
                    check="symbolic",
                    score=significance(f.evalue),
                    threshold=self.policy.symbolic_threshold,
                    shared_notes=p.shared_notes,
                    shared_bars=p.shared_bars,
                    piece_bars=p.query_bars,
                    catalog_bars=p.catalog_bars,
                    piece_seconds=p.query_seconds,
                    catalog_seconds=p.catalog_seconds,
                    piece_line=f.query_line,
                    catalog_line=f.catalog_line,
                    transposition=p.transposition,
                    evalue=f.evalue,
                    bars=p.score,
                    evidence=strongest,
                    exact_run_notes=0 if f.run is None else f.run.notes,
                )
            )
        # most significant first; ISRC breaks ties so the report is stable
        return sorted(out, key=lambda e: (-e.score, e.isrc))[:CLOSEST]

    # -- audio ------------------------------------------------------------------------------

    def audio_evidence(self, fp: Fingerprint, exclude_isrcs: frozenset[str] = frozenset()) -> list[Evidence]:
        if self.audio is None:
            return []
        out: dict[str, Evidence] = {}
        for m in self.audio.index.match(fp, k=CLOSEST + 2 * len(exclude_isrcs) + 4):
            src = self.audio.sources[m.clip]
            if src.isrc in exclude_isrcs or (src.isrc in out and out[src.isrc].score >= m.votes):
                continue
            start = max(m.offset_seconds, 0.0)
            out[src.isrc] = Evidence(
                isrc=src.isrc,
                title=src.title,
                check="audio",
                score=float(m.votes),
                threshold=self.policy.audio_threshold,
                piece_seconds=(round(max(-m.offset_seconds, 0.0), 3), round(fp.seconds, 3)),
                catalog_seconds=(round(start, 3), round(start + fp.seconds, 3)),
                catalog_line=src.origin,
                matched_fraction=m.matched_fraction,
            )
        return sorted(out.values(), key=lambda e: (-e.score, e.isrc))[:CLOSEST]

    # -- verdict ----------------------------------------------------------------------------

    def verdict(
        self,
        *,
        midi: bytes | None = None,
        audio: bytes | Path | Fingerprint | None = None,
        exclude_isrcs: frozenset[str] = frozenset(),
    ) -> GuardVerdict:
        """Check MIDI and/or audio against the catalog: ``blocked`` if any check reaches its threshold."""
        evidence: list[Evidence] = []
        checks: list[str] = []
        notes: list[str] = []
        exclude = frozenset(i for i, p in enumerate(self.index.pieces) if p.isrc in exclude_isrcs)
        if midi is not None:
            checks.append("symbolic")
            lines = encode_midi(midi)
            if not lines:
                notes.append("symbolic: the MIDI has no melody or bass line of 6 notes or more; nothing to compare")
            evidence += self.symbolic_evidence(lines, exclude)
        if audio is not None:
            if self.audio is None:
                notes.append("audio: the audio check is switched off (ACCORD_GUARD_AUDIO=false)")
            else:
                checks.append("audio")
                fp = audio if isinstance(audio, Fingerprint) else fingerprint_file(audio)
                evidence += self.audio_evidence(fp, exclude_isrcs)
        blocked = any(e.over for e in evidence)
        return GuardVerdict(
            status=BLOCKED if blocked else CLEAR,
            threshold=self.policy.symbolic_threshold,
            audio_threshold=self.policy.audio_threshold,
            closest=tuple(sorted(evidence, key=lambda e: (-(e.score / e.threshold), e.check, e.isrc))),
            checks=tuple(checks),
            policy_version=self.policy.version,
            catalog={
                "recordings": len(self.index.pieces),
                "lines": self.index.entries,
                "audio_clips": 0 if self.audio is None else self.audio.index.count,
            },
            notes=tuple(notes),
        )

    # -- calibration ------------------------------------------------------------------------

    def self_similarity(
        self,
        sample: int | None = None,
        seed: int = 0,
        progress: Progress | None = None,
        window_bars: int | Sequence[int] = CALIBRATION_BARS,
        pieces: Sequence[int] | None = None,
    ) -> list[Borrowing]:
        """For each catalog piece, a window of ``window_bars`` bars checked against the *other* works.

        Other recordings of the same work are left out, and so is each close piece that is the
        same tune under another title (the window covered :data:`DUPLICATE_COVERAGE` of its notes
        in it, or :meth:`same_tune`): it is recorded in ``same_tune`` and passed over, so every
        piece's borrowing is from works that are not its own tune. The closest other work is the
        most significant one; each line of evidence's best score over the other works is kept
        (``evidence``): one draw from its chance distribution, what its null is fitted on.
        ``window_bars``: one length, or lengths to draw from per piece (seeded) so the nulls see
        queries of every length. ``pieces``: measure these only (default: all, or ``sample`` of them).
        """
        order = np.arange(len(self.index.pieces)) if pieces is None else np.asarray(sorted(pieces), dtype=np.int64)
        if sample is not None and sample < len(order):
            order = np.sort(np.random.default_rng(seed).choice(order, size=sample, replace=False))
        lengths = [window_bars] if isinstance(window_bars, int) else list(window_bars)
        by_piece: dict[int, list[int]] = {}
        for e, piece in enumerate(self.index.entry_piece.tolist()):
            by_piece.setdefault(piece, []).append(e)
        out = []
        for n, piece in enumerate(order.tolist(), start=1):
            works = set(self.works[piece])
            left_out = {i for i, w in enumerate(self.works) if i == piece or (works and works.intersection(w))}
            rng = np.random.default_rng([seed, piece])
            bars = int(rng.choice(lengths))
            lines = [
                (LINE_KINDS[int(self.index.entry_kind[e])], window(self.index.entry(e), bars, rng))
                for e in by_piece.get(piece, [])
            ]
            passed: list[tuple[int, float]] = []
            measured = Borrowing(piece, -1, 0.0, 0, 0.0, window_bars=bars)
            for _ in range(MAX_SAME_TUNE + 1):
                found = self.findings(lines, frozenset(left_out))
                fresh = False
                # closest first: the most significant, then the longest passage, then the lower piece id
                for other, f in sorted(found.items(), key=lambda kv: (kv[1].evalue, -kv[1].passage.score, kv[0])):
                    if len(passed) < MAX_SAME_TUNE and self._same_tune_in(piece, other, f, lines):
                        passed.append((other, f.passage.score))  # the same tune under another title
                        left_out.add(other)
                        fresh = True
                        continue
                    break
                found = {k: v for k, v in found.items() if k not in left_out}
                if fresh and len(passed) < MAX_SAME_TUNE and not found:
                    continue  # every piece retrieved was the tune itself: look again without them
                if found:
                    other, f = min(found.items(), key=lambda kv: (kv[1].evalue, -kv[1].passage.score, kv[0]))
                    q_len = next(len(enc) for kind, enc in lines if kind == f.query_line)
                    p = f.passage
                    measured = Borrowing(
                        piece,
                        other,
                        p.score,
                        p.shared_notes,
                        round(p.shared_notes / max(q_len, 1), 3),
                        evidence=self._best_per_line(piece, found, lines, left_out, passed),
                        significance=significance(f.evalue),
                        window_bars=bars,
                    )
                break
            if measured.other < 0:
                measured = replace(measured, evidence=self._best_per_line(piece, {}, lines, left_out, passed))
            out.append(replace(measured, same_tune=tuple(passed)))
            if progress:
                progress("measure catalog borrowing", n, len(order))
        return out

    def _same_tune_in(self, piece: int, other: int, f: Finding, lines: Sequence[tuple[str, Encoded]]) -> bool:
        """The calibration's same-tune rule for one found piece: the window's shared passage covers
        :data:`DUPLICATE_COVERAGE` of the window's line, or the two whole melodies are one tune."""
        q_len = next(len(enc) for kind, enc in lines if kind == f.query_line)
        return f.passage.shared_notes / max(q_len, 1) >= DUPLICATE_COVERAGE or self.same_tune(piece, other)

    def _best_per_line(
        self,
        piece: int,
        found: dict[int, Finding],
        lines: Sequence[tuple[str, Encoded]],
        left_out: set[int],
        passed: list[tuple[int, float]],
    ) -> tuple[tuple[str, float, int, float], ...]:
        """Each line of evidence's best ``(score, query notes)`` over ``found``, passing over (and
        recording in ``passed``) a piece that is the same tune where it is the one that scores best."""
        # a line of evidence nothing reached is a draw of 0 (melody and bass: only where the window has both)
        info = information_of(self.index)
        longest = max(lines, key=lambda kv: len(kv[1]), default=None)
        single = (0, 0.0) if longest is None else (len(longest[1]), composition(longest[1], info))
        kinds = {"alignment": single, "exact run": single, "length": single}
        if {"melody", "bass"} <= {kind for kind, _ in lines}:
            both = sum(len(enc) for _, enc in lines)
            mixed = sum(len(enc) * composition(enc, info) for _, enc in lines) / max(both, 1)
            kinds["melody and bass"] = (both, round(mixed, 4))
        out = []
        for kind, notes_if_none in kinds.items():
            while True:
                having = [
                    (f.scores[kind], other) for other, f in found.items() if kind in f.scores and other not in left_out
                ]
                if not having:
                    out.append((kind, 0.0, *notes_if_none))
                    break
                (score, notes, bits), other = max(having, key=lambda x: (x[0][0], -x[1]))
                if len(passed) < MAX_SAME_TUNE and self._same_tune_in(piece, other, found[other], lines):
                    passed.append((other, found[other].passage.score))
                    left_out.add(other)
                    continue
                out.append((kind, score, notes, bits))
                break
        return tuple(out)

    def audio_self_similarity(
        self,
        sample: int | None = None,
        seed: int = 0,
        same_tune: Mapping[str, frozenset[str]] | None = None,
        related: Callable[[str, str], bool] | None = None,
    ) -> np.ndarray:
        """Best audio votes of each catalog clip against the clips of *other* recordings.

        ``same_tune`` maps a recording to the recordings the symbolic calibration found to be the
        same tune under another title: they are left out here too, as a re-render of one tune is
        not the catalog's ordinary borrowing. ``related(a, b)``, where given, is asked about each
        closest recording in turn, and one it calls the same tune is passed over for the next
        (the symbolic calibration looks at one window per piece and misses some pairs that the
        audio check, hearing the whole clip, finds).
        """
        if self.audio is None or self.audio.index.count == 0:
            return np.zeros(0)
        ref = self.audio
        clips = np.arange(ref.index.count)
        if sample is not None and sample < len(clips):
            clips = np.sort(np.random.default_rng(seed).choice(clips, size=sample, replace=False))
        scores = []
        for c in clips.tolist():
            mask = ref.index.clips == c
            order = np.argsort(ref.index.times[mask], kind="stable")
            fp = Fingerprint(ref.index.hashes[mask][order], ref.index.times[mask][order], 0.0)
            isrc = ref.sources[c].isrc
            ev = self.audio_evidence(fp, frozenset({isrc}) | (same_tune or {}).get(isrc, frozenset()))
            if related is not None:
                ev = [e for e in ev if not related(isrc, e.isrc)]
            scores.append(ev[0].score if ev else 0.0)
        return np.asarray(scores, dtype=np.float64)


def heard_notes(audio: bytes | Path) -> bytes:
    """The notes heard in ``audio`` as MIDI for the symbolic check (:mod:`accord.media.transcribe`).

    A transcribed note lasts as long as it rings (room and release included), so a melody's
    notes overlap the next ones and the line rule "a higher note still sounding keeps a lower
    one off the melody" would drop half a tune: each note is cut at the next onset instead.
    """
    from accord.media.features import read_performance
    from accord.media.transcribe import performance_midi, transcribe_file

    perf = read_performance(transcribe_file(audio))
    notes = perf.notes.copy()
    onsets = np.unique(notes[:, 0])
    following = np.searchsorted(onsets, notes[:, 0], side="right")
    has_next = following < len(onsets)
    gap = np.where(has_next, onsets[np.minimum(following, len(onsets) - 1)] - notes[:, 0], np.inf)
    notes[:, 1] = np.minimum(notes[:, 1], gap)
    return performance_midi(replace(perf, notes=notes))


def check_audio(guard: Guard, audio: bytes | Path, *, transcribe: bool) -> GuardVerdict:
    """The verdict on an audio file: the audio check, and the symbolic check on the notes heard
    in it (a re-played, transposed copy has none of the catalog's landmarks but all of its
    melody) unless ``transcribe`` is off."""
    if transcribe:
        verdict = guard.verdict(midi=heard_notes(audio), audio=audio)
        note = "symbolic: on the notes transcribed from the audio (basic-pitch's model)"
    else:
        verdict = guard.verdict(audio=audio)
        note = "symbolic: transcription is off (ACCORD_GUARD_TRANSCRIBE=false); audio check only"
    return replace(verdict, notes=(*verdict.notes, note))


def transcribed_midi(audio: Path, sha256: str, cache_dir: Path) -> bytes:
    """:func:`heard_notes` of a catalog audio file, cached per file hash and transcription version."""
    from accord.media.transcribe import TRANSCRIBE_VERSION

    path = cache_dir / "guard" / "transcribed" / f"{TRANSCRIBE_VERSION.replace('/', '-')}-{sha256}.mid"
    if path.is_file():
        return path.read_bytes()
    midi = heard_notes(audio)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(midi)
    tmp.replace(path)
    return midi


def guard_output(store: Store, settings: Settings, midi: bytes, audio: Path | None) -> GuardVerdict:
    """The verdict on one candidate output: symbolic on its MIDI, audio on its rendered WAV (if given)."""
    return Guard.for_store(store, settings).verdict(midi=midi, audio=audio)
