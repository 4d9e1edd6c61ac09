"""The audio check's reference set: fingerprints of every catalog recording's sound.

For each recording in the registry the guard fingerprints (:mod:`accord.media.fingerprint`)

* every **audio file** delivered with it (``kind = "audio"``: WAV or FLAC), and
* a **render of its MIDI** (FluidSynth with the soundfont that renders outputs, at 8 kHz,
  the first :data:`RENDER_SECONDS` seconds), since an output that reproduces a catalog piece
  note for note with the same instrument sounds like it. Where pyfluidsynth and a soundfont
  are available the render runs in this process (:mod:`accord.media.fluid`: the soundfont is
  loaded once per process, not once per piece); otherwise :func:`accord.media.render.render`
  runs the ``fluidsynth`` command per piece.

Fingerprints are cached one file per media hash (``cache_dir/guard/fp/``), so a catalog
change costs only its new files. Audio-only recordings are also transcribed to notes for the
symbolic check (:func:`accord.attribution.guard.check.transcribed_midi`).
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
RENDER_IN_PROCESS = "fluid2"
"""Cache tag of MIDI renders made in process (:mod:`accord.media.fluid`); bump when that render changes."""
RENDER_COMMAND = "cli1"
"""Cache tag of MIDI renders made with the ``fluidsynth`` command (or the simple synthesizer)."""
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


def render_tag() -> str:
    """:data:`RENDER_IN_PROCESS` where :func:`render_fingerprint` renders in process, else :data:`RENDER_COMMAND`."""
    from accord.media.fluid import available

    return RENDER_IN_PROCESS if available()[0] else RENDER_COMMAND


def _cache_path(cache_dir: Path, source: AudioSource, render: str | None = None) -> Path:
    """The cache file of ``source``; MIDI renders also name how they were rendered (:func:`render_tag`)."""
    tag = FINGERPRINT_VERSION.replace("/", "-")
    origin = source.origin.replace(" ", "-")
    if source.origin != "audio":
        origin = f"{origin}-{render or render_tag()}"
    return cache_dir / "guard" / "fp" / f"{tag}-{origin}-{source.sha256}.npz"


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
    """The fingerprint of a MIDI file rendered as outputs are (cut at :data:`RENDER_SECONDS`).

    In process with pyfluidsynth where it and a soundfont are available
    (:func:`accord.media.fluid.render_performance`), else with the ``fluidsynth`` command.
    """
    from accord.media.features import read_performance
    from accord.media.fluid import FluidUnavailable, available, render_performance
    from accord.media.render import render, synthesize

    perf = read_performance(midi)
    if available()[0]:
        try:
            samples = render_performance(perf, SAMPLE_RATE, seconds=min(perf.seconds, RENDER_SECONDS))
        except FluidUnavailable:
            pass  # e.g. the soundfont does not load: the command line below says why, or falls back
        else:
            from accord.media.fingerprint import fingerprint

            return fingerprint(samples, SAMPLE_RATE)
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
    render = render_tag()
    missing = [j for j in jobs if not _cache_path(cache_dir, j[0], render).is_file()]
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
