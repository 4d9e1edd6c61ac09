"""What the guard found: the evidence per catalog work, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CLEAR, BLOCKED = "clear", "blocked"


@dataclass(frozen=True)
class Evidence:
    """How close a piece comes to one catalog recording, by one check.

    Attributes:
        isrc: the catalog recording.
        title: its title.
        check: ``"symbolic"`` (shared melody/bass passage) or ``"audio"`` (landmark fingerprint).
        score: symbolic: the **significance** ``−log10 E`` of what the piece shares with the work
            (E: the chance matches at least this good expected in the whole catalog, over the
            lines of evidence; :mod:`.significance`); audio: the landmarks agreeing on one time offset.
        threshold: the score at which this check blocks.
        shared_notes: notes of the passage with the same (transposed) pitch (symbolic; 0 for audio).
        shared_bars: bars the passage spans in the checked piece (symbolic; 0 for audio).
        piece_bars: ``(first, last)`` bar of the passage in the checked piece (symbolic).
        catalog_bars: ``(first, last)`` bar of the passage in the catalog piece (symbolic).
        piece_seconds: ``(start, end)`` of the passage in the checked piece, seconds.
        catalog_seconds: ``(start, end)`` in the catalog piece, seconds.
        piece_line: ``"melody"``/``"bass"`` of the checked piece (symbolic), or ``""``.
        catalog_line: the same in the catalog piece, or ``"audio"``/``"midi render"`` (audio check).
        transposition: semitones between the two (symbolic).
        matched_fraction: audio: share of the checked piece's landmarks that agree.
        evalue: symbolic: the E-value behind ``score``.
        bars: symbolic: the best aligned passage's score in bars of the catalog line (its
            alignment over the line's notes per bar): how long the shared passage is.
        evidence: symbolic: the line of evidence with the smallest E (``alignment``, ``exact run``,
            ``melody and bass``).
        exact_run_notes: symbolic: notes of the longest exact run (intervals and rhythm) found.
    """

    isrc: str
    title: str
    check: str
    score: float
    threshold: float
    shared_notes: int = 0
    shared_bars: int = 0
    piece_bars: tuple[int, int] = (0, 0)
    catalog_bars: tuple[int, int] = (0, 0)
    piece_seconds: tuple[float, float] = (0.0, 0.0)
    catalog_seconds: tuple[float, float] = (0.0, 0.0)
    piece_line: str = ""
    catalog_line: str = ""
    transposition: int = 0
    matched_fraction: float = 0.0
    evalue: float = float("inf")
    bars: float = 0.0
    evidence: str = ""
    exact_run_notes: int = 0

    @property
    def over(self) -> bool:
        return self.score >= self.threshold

    def describe(self) -> str:
        """One sentence a rights holder can read."""
        if self.check == "audio":
            return (
                f"{self.isrc} ({self.title}): {int(self.score)} audio landmarks agree "
                f"(threshold {int(self.threshold)}), the piece from {self.piece_seconds[0]:.1f} s "
                f"≈ the recording at {self.catalog_seconds[0]:.1f} s"
            )
        return (
            f"{self.isrc} ({self.title}): E = {self.evalue:.2g} chance matches this good in the catalog "
            f"(significance {self.score:.1f}, threshold {self.threshold:g}; by {self.evidence or 'alignment'}), "
            f"{self.shared_notes} shared notes worth {self.bars:.1f} bars, "
            f"{self.piece_line} bars {self.piece_bars[0]}-{self.piece_bars[1]} "
            f"≈ {self.catalog_line} bars {self.catalog_bars[0]}-{self.catalog_bars[1]} of the catalog piece"
            + (f", transposed {self.transposition:+d}" if self.transposition else "")
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "isrc": self.isrc,
            "title": self.title,
            "check": self.check,
            "score": self.score,
            "threshold": self.threshold,
            "over_threshold": self.over,
        }
        if self.check == "symbolic":
            data |= {
                "shared_notes": self.shared_notes,
                "shared_bars": self.shared_bars,
                "piece_bars": list(self.piece_bars),
                "catalog_bars": list(self.catalog_bars),
                "piece_seconds": list(self.piece_seconds),
                "catalog_seconds": list(self.catalog_seconds),
                "piece_line": self.piece_line,
                "catalog_line": self.catalog_line,
                "transposition": self.transposition,
                "evalue": self.evalue if self.evalue != float("inf") else None,
                "bars": self.bars,
                "evidence": self.evidence,
                "exact_run_notes": self.exact_run_notes,
            }
        else:
            data |= {
                "matched_fraction": self.matched_fraction,
                "piece_seconds": list(self.piece_seconds),
                "catalog_seconds": list(self.catalog_seconds),
                "catalog_source": self.catalog_line,
            }
        return data


@dataclass(frozen=True)
class GuardVerdict:
    """The replication guard's answer for one piece.

    Attributes:
        status: ``"clear"`` (no check over its threshold) or ``"blocked"``.
        threshold: the symbolic threshold (significance, ``−log10 E``) in force.
        audio_threshold: the audio threshold (agreeing landmarks) in force.
        closest: the closest catalog recordings, most similar first, one per (work, check).
        checks: the checks that ran (``"symbolic"``, ``"audio"``).
        policy_version: the policy the thresholds come from.
        catalog: how much was compared: ``{"recordings": n, "lines": n, "audio_clips": n}``.
        notes: anything a reader should know (a check that could not run, and why).
    """

    status: str
    threshold: float
    audio_threshold: float
    closest: tuple[Evidence, ...]
    checks: tuple[str, ...]
    policy_version: str
    catalog: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def blocked(self) -> bool:
        return self.status == BLOCKED

    @property
    def worst(self) -> Evidence | None:
        """The evidence most over (or nearest to) its threshold."""
        if not self.closest:
            return None
        return max(self.closest, key=lambda e: (e.score / e.threshold if e.threshold else 0.0, e.score))

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "threshold": self.threshold,
            "audio_threshold": self.audio_threshold,
            "policy_version": self.policy_version,
            "checks": list(self.checks),
            "catalog": dict(self.catalog),
            "closest": [e.to_dict() for e in self.closest],
            "notes": list(self.notes),
        }
