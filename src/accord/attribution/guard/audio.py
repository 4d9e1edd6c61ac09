"""The audio check's reference set: fingerprints of every catalog recording's sound.

For each recording in the registry the guard fingerprints (:mod:`accord.media.fingerprint`)

* every **audio file** delivered with it (``kind = "audio"``: WAV or FLAC), and
* a **render of its MIDI** (:func:`accord.media.render.render`, the same synthesizer that
  renders outputs, at 8 kHz, the first :data:`RENDER_SECONDS` seconds), since an output
  that reproduces a catalog piece note for note with the same instrument sounds like it.

Fingerprints are cached one file per media hash (``cache_dir/guard/fp/``), so a catalog
change costs only its new files. Audio-only recordings are covered by this check alone:
transcribing them to notes for the symbolic check is not built (see ``docs/guard.md``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accord.errors import AccordError
from accord.execution import get_executor
from accord.media.fingerprint import FINGERPRINT_VERSION, SAMPLE_RATE, Fingerprint, fingerprint_file

RENDER_SECONDS = 180.0  # renders are cut here: the audio check's cost grows with catalog minutes
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class AudioSource:
    """One catalog sound the audio check compares against.

    Attributes:
        isrc: the recording.
        title: its title.
        sha256: the media file's hash (MIDI or audio).
        origin: ``"audio"`` (a delivered recording) or ``"midi render"``.
    """

    isrc: str
    title: str
    sha256: str
    origin: str


def _cache_path(cache_dir: Path, source: AudioSource) -> Path:
    tag = FINGERPRINT_VERSION.replace("/", "-")
    return cache_dir / "guard" / "fp" / f"{tag}-{source.origin.replace(' ', '-')}-{source.sha256}.npz"


def fingerprint_source(job: tuple[AudioSource, Path, Path]) -> Fingerprint:
    """Fingerprint one source (rendering MIDI first), reading and writing its cache file."""
    source, media_path, cache_dir = job
    path = _cache_path(cache_dir, source)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return Fingerprint(data["hashes"], data["times"], float(data["seconds"]))
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)
    audio = source.origin == "audio"
    fp = fingerprint_file(media_path) if audio else render_fingerprint(media_path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, hashes=fp.hashes, times=fp.times, seconds=np.array(fp.seconds))
    tmp.replace(path)
    return fp


def render_fingerprint(midi: bytes) -> Fingerprint:
    """The fingerprint of a MIDI file rendered as outputs are (cut at :data:`RENDER_SECONDS`)."""
    from accord.media.features import read_performance
    from accord.media.render import render, synthesize

    perf = read_performance(midi)
    if perf.seconds > RENDER_SECONDS:
        keep = perf.notes[:, 0] < RENDER_SECONDS
        perf = type(perf)(perf.notes[keep], perf.track[keep], perf.instruments, perf.downbeats, RENDER_SECONDS)
        from accord.media.fingerprint import fingerprint

        return fingerprint(synthesize(perf, SAMPLE_RATE), SAMPLE_RATE)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "render.wav"
        try:
            render(midi, out, sample_rate=SAMPLE_RATE)
        except AccordError:
            from accord.media.fingerprint import fingerprint

            return fingerprint(synthesize(perf, SAMPLE_RATE), SAMPLE_RATE)
        return fingerprint_file(out)


def fingerprint_all(
    sources: Sequence[tuple[AudioSource, Path]], cache_dir: Path, workers: int = 1, progress: Progress | None = None
) -> list[Fingerprint]:
    """Fingerprints of every source, from the cache where present, the rest in a process pool."""
    jobs = [(s, p, cache_dir) for s, p in sources]
    missing = [j for j in jobs if not _cache_path(cache_dir, j[0]).is_file()]
    if len(missing) > 4 and workers != 1:

        def done(n: int, total: int) -> None:
            if progress:
                progress("fingerprint catalog audio", n, total)

        get_executor("local", workers).map(fingerprint_source, missing, on_done=done)
    out = []
    for i, job in enumerate(jobs, start=1):
        out.append(fingerprint_source(job))
        if progress and len(missing) <= 4:
            progress("fingerprint catalog audio", i, len(jobs))
    return out
