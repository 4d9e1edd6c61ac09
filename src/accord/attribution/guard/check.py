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
from accord.attribution.guard.audio import AudioSource, guard_catalog, load_or_build_reference, reference_key
from accord.attribution.guard.findings import Finding, evalues, find
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
        passes the defaults, since it replaces whatever policy was saved.

        Resident: the catalog listing is read again only when the registry has changed
        (:func:`~.audio.guard_catalog`), the symbolic index and the audio reference are
        memory-mapped from their saved folders, and all three are kept in this process (the API,
        a worker, a CLI call checking many files) for the next call."""
        listing = guard_catalog(store, settings)
        pieces, works, genres = listing.pieces, listing.works, listing.genres
        use_audio = settings.guard_audio if audio is None else audio
        memo_key = (
            str(settings.cache_dir),
            catalog_key(pieces),
            reference_key([s for s, _ in listing.audio_sources]) if use_audio else "",
        )
        if memo_key not in _LOADED:

            def read(piece: CatalogPiece) -> list[tuple[str, Encoded]]:
                if piece.sha256 in listing.midi:
                    return encode_midi(listing.midi[piece.sha256].read_bytes())
                heard = listing.transcribed[piece.sha256]
                return encode_midi(transcribed_midi(heard, piece.sha256, settings.cache_dir))

            index = load_or_build(pieces, read, settings.cache_dir, progress)
            reference = None
            if use_audio:
                sources = listing.audio_sources
                landmarks = load_or_build_reference(sources, settings.cache_dir, settings.workers, progress)
                reference = AudioReference(tuple(s for s, _ in sources), landmarks)
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
        sources = self.audio.sources
        left_out = [c for c, s in enumerate(sources) if s.isrc in exclude_isrcs] if exclude_isrcs else []
        for m in self.audio.index.match(fp, k=CLOSEST + 4, exclude=left_out):
            src = sources[m.clip]
            if src.isrc in out and out[src.isrc].score >= m.votes:
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
