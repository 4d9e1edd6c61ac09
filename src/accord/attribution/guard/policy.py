"""The guard's thresholds, set from how much catalog works already share with each other.

Common cadences, scales and stock figures recur across unrelated works; that is the
catalog's own *borrowing level*, and it is not copying. Calibration (:mod:`.calibrate`)
measures it and fits, per line of evidence, the chance distribution of the best score a
query of ``m`` notes reaches in the whole catalog (:class:`~.significance.GumbelNull`), so
any shared passage can be given an **E-value**: the number of chance matches at least this
good expected in the whole catalog. The symbolic check blocks on **significance**
``−log10 E`` at or above ``symbolic_threshold``: the ``percentile`` (99.5 by default) of the
catalog's own pieces' significance plus a ``margin`` in decades (0.5: E about three times
smaller), never below :data:`SYMBOLIC_FLOOR` (E = 0.01). The substitution scores the alignment
uses are learnt at the same time (:class:`~.scoring.Scoring`). The audio threshold is set
the same way on agreeing landmarks.

A policy is saved as JSON (``home/guard/policy.json``) with the nulls, the scores and the
distributions they came from, so anyone can see why the line is where it is. Settings can
override either threshold (``ACCORD_GUARD_SYMBOLIC_THRESHOLD``, in significance;
``ACCORD_GUARD_AUDIO_THRESHOLD``); with no calibration the defaults below hold (nulls fitted
on the demo catalog, scaled to the catalog's size).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from accord.attribution.guard.scoring import Scoring
from accord.attribution.guard.significance import GumbelNull
from accord.errors import ValidationError
from accord.settings import Settings

POLICY_FORMAT = "accord-guard-policy/4"
"""Format 4: the symbolic threshold is a significance (``−log10 E``) with the fitted nulls and the
learnt substitution scores (format 3: bars of the catalog line; 1: notes); an older file must be
recalibrated."""
DEFAULT_SYMBOLIC_THRESHOLD = 3.0
"""E = 0.001 (one chance match this good per thousand checked pieces), used until a catalog is
calibrated."""
DEFAULT_AUDIO_THRESHOLD = 15.0
"""The audio score (rarity-weighted frames of agreeing landmarks, :class:`accord.media.fingerprint.AudioMatch`)
used until a catalog is calibrated: two different tunes on one simple synthesizer reach ~10 by
chance, a 6-second copy ~20 (tests/test_fingerprint.py); the demo catalog calibrates higher (docs/guard.md)."""
SYMBOLIC_FLOOR = 2.0  # never below significance 2 (E = 0.01): one chance match per hundred pieces is not evidence
AUDIO_FLOOR = 10.0  # audio: about what two unrelated tunes on one synthesizer share by chance
AUDIO_MARGIN_FACTOR = 0.1  # audio threshold = percentile + max(margin, 10% of it): see docs/guard.md
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.5, 99.9, 100.0)
DEFAULT_SCORING = Scoring(
    table=(
        (4.065, 1.337, 1.334),
        (-3.727, -3.29, -4.326),
        (-4.635, -1.569, -4.423),
        (-4.555, -6.06, -5.116),
    ),
    gap=6.06,
    learnt_from=17794,
)
"""The substitution scores until a catalog is calibrated: those learnt on the demo catalog
(1,556 pieces, 563 same-tune pairs; ``accord guard calibrate``, 2026-12-03)."""
DEFAULT_NULLS = {
    "alignment": GumbelNull(lam=0.137129, a=0.899287, c=1.503941, notes=173552, samples=1556, d=-0.500223),
    "exact run": GumbelNull(lam=0.107074, a=-0.002842, c=1.162051, notes=173552, samples=1556, d=-0.174003),
    "melody and bass": GumbelNull(lam=0.015735, a=-7.539904, c=1.352119, notes=173552, samples=439, d=-0.246361),
    "length": GumbelNull(lam=2.144726, a=1.307545, c=0.887752, notes=173552, samples=1556, d=-0.356033),
}
"""The nulls until a catalog is calibrated: fitted on the demo catalog (173,552 notes) the same
day; a check scales them to its own catalog's size (E grows with the catalog's notes)."""


@dataclass(frozen=True)
class GuardPolicy:
    """The thresholds in force and where they come from.

    Attributes:
        symbolic_threshold: significance (``−log10 E``) of a shared passage at which an output is blocked.
        audio_threshold: agreeing landmarks at which an output is blocked.
        source: ``"calibrated"``, ``"default"`` or ``"settings"`` (overridden).
        percentile: the percentile of the catalog's self-similarity used.
        margin: added to it (symbolic: decades of E; audio: at least this many landmarks, and 10% of the level).
        measured: the distributions measured (``{"symbolic": {...}, "audio": {...}}``).
        catalog_key: the catalog hash the measurement was made on (``""`` for defaults).
        created: when it was calibrated (ISO 8601), or ``""``.
        scoring: the alignment's substitution scores.
        nulls: the fitted chance distribution of each line of evidence.
    """

    symbolic_threshold: float
    audio_threshold: float
    source: str
    percentile: float = 99.5
    margin: float = 0.5
    measured: dict[str, Any] = field(default_factory=dict)
    catalog_key: str = ""
    created: str = ""
    scoring: Scoring = field(default_factory=lambda: DEFAULT_SCORING)
    nulls: dict[str, GumbelNull] = field(default_factory=lambda: dict(DEFAULT_NULLS))

    @property
    def version(self) -> str:
        """``guard-policy/4:<source>:<12 hex>``: names the exact thresholds, nulls, scores and their data."""
        body = json.dumps(
            [
                self.symbolic_threshold,
                self.audio_threshold,
                self.source,
                self.catalog_key,
                self.created,
                self.scoring.to_dict(),
                {k: v.to_dict() for k, v in sorted(self.nulls.items())},
            ],
            sort_keys=True,
        )
        return f"guard-policy/4:{self.source}:{hashlib.sha256(body.encode()).hexdigest()[:12]}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": POLICY_FORMAT,
            "version": self.version,
            "symbolic_threshold": self.symbolic_threshold,
            "audio_threshold": self.audio_threshold,
            "source": self.source,
            "percentile": self.percentile,
            "margin": self.margin,
            "measured": self.measured,
            "catalog_key": self.catalog_key,
            "created": self.created,
            "scoring": self.scoring.to_dict(),
            "nulls": {k: v.to_dict() for k, v in sorted(self.nulls.items())},
        }


def default_policy() -> GuardPolicy:
    return GuardPolicy(DEFAULT_SYMBOLIC_THRESHOLD, DEFAULT_AUDIO_THRESHOLD, "default")


def policy_path(settings: Settings) -> Path:
    return settings.home / "guard" / "policy.json"


def summarise(scores: np.ndarray) -> dict[str, Any]:
    """Count, mean and the :data:`PERCENTILES` of a score distribution (JSON-ready)."""
    if len(scores) == 0:
        return {"count": 0}
    return {
        "count": len(scores),
        "mean": round(float(np.mean(scores)), 3),
        **{f"p{p:g}": round(float(np.percentile(scores, p)), 3) for p in PERCENTILES},
    }


def threshold_from(
    scores: np.ndarray, percentile: float, margin: float, floor: float, *, relative: float = 0.0
) -> float:
    """``max(floor, percentile(scores) + max(margin, relative · percentile))``, rounded up to a quarter point."""
    if not 0 < percentile <= 100:
        msg = f"percentile={percentile!r}: expected a number in (0, 100]"
        raise ValidationError(msg, field="percentile", value=percentile)
    if len(scores) == 0:
        return floor
    level = float(np.percentile(scores, percentile))
    return max(floor, math.ceil((level + max(margin, relative * level)) * 4) / 4)


def make_policy(
    symbolic_scores: np.ndarray,
    audio_scores: np.ndarray | None,
    *,
    percentile: float,
    margin: float,
    catalog_key: str,
    created: str,
    scoring: Scoring | None = None,
    nulls: dict[str, GumbelNull] | None = None,
) -> GuardPolicy:
    """The calibrated policy from the measured self-similarity of the catalog (symbolic: the
    significance of each piece's closest other work, under ``scoring`` and ``nulls``)."""
    audio = np.zeros(0) if audio_scores is None else audio_scores
    return GuardPolicy(
        symbolic_threshold=threshold_from(symbolic_scores, percentile, margin, SYMBOLIC_FLOOR),
        audio_threshold=threshold_from(audio, percentile, margin, AUDIO_FLOOR, relative=AUDIO_MARGIN_FACTOR)
        if len(audio)
        else DEFAULT_AUDIO_THRESHOLD,
        source="calibrated",
        percentile=percentile,
        margin=margin,
        measured={"symbolic": summarise(symbolic_scores), "audio": summarise(audio)},
        catalog_key=catalog_key,
        created=created,
        scoring=DEFAULT_SCORING if scoring is None else scoring,
        nulls=dict(DEFAULT_NULLS) if nulls is None else dict(nulls),
    )


def save_policy(policy: GuardPolicy, settings: Settings) -> Path:
    path = policy_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(policy.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_policy_file(path: Path) -> GuardPolicy:
    """The policy saved at ``path``, as saved (no Settings overrides).

    Raises:
        ValidationError: the file is not a policy, or one of an earlier format.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        found = data.get("format")
    except (ValueError, AttributeError) as error:
        msg = f"guard policy: {path} is not a policy file ({error}); run accord guard calibrate again"
        raise ValidationError(msg, field="guard_policy", value=str(path)) from error
    if found != POLICY_FORMAT:
        msg = (
            f"guard policy: {path} has format {found!r}, not {POLICY_FORMAT!r} "
            "(an earlier guard's scores); run accord guard calibrate again"
        )
        raise ValidationError(msg, field="guard_policy", value=str(path))
    try:
        return GuardPolicy(
            symbolic_threshold=float(data["symbolic_threshold"]),
            audio_threshold=float(data["audio_threshold"]),
            source=str(data["source"]),
            percentile=float(data["percentile"]),
            margin=float(data["margin"]),
            measured=dict(data.get("measured", {})),
            catalog_key=str(data.get("catalog_key", "")),
            created=str(data.get("created", "")),
            scoring=Scoring.from_dict(data["scoring"]),
            nulls={str(k): GumbelNull.from_dict(v) for k, v in dict(data["nulls"]).items()},
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        msg = f"guard policy: {path} is not a policy file ({error}); run accord guard calibrate again"
        raise ValidationError(msg, field="guard_policy", value=str(path)) from error


def keep_audio_calibration(policy: GuardPolicy, settings: Settings) -> tuple[GuardPolicy, bool]:
    """``policy`` (calibrated without the audio check) with the audio threshold and measurement of
    the saved policy, where that one calibrated the audio check on the same catalog; else as is.
    Returns the policy and whether the audio side was kept."""
    path = policy_path(settings)
    if not path.is_file():
        return policy, False
    try:
        saved = read_policy_file(path)
    except ValidationError:
        return policy, False
    audio = saved.measured.get("audio") or {}
    if saved.source != "calibrated" or saved.catalog_key != policy.catalog_key or not audio.get("count"):
        return policy, False
    measured = dict(policy.measured) | {"audio": audio}
    return replace(policy, audio_threshold=saved.audio_threshold, measured=measured), True


def load_policy(settings: Settings) -> GuardPolicy:
    """The policy in force: the calibrated one if saved (else the defaults), with Settings overrides applied."""
    path = policy_path(settings)
    policy = read_policy_file(path) if path.is_file() else default_policy()
    symbolic = settings.guard_symbolic_threshold
    audio = settings.guard_audio_threshold
    if symbolic > 0 or audio > 0:
        policy = replace(
            policy,
            symbolic_threshold=symbolic if symbolic > 0 else policy.symbolic_threshold,
            audio_threshold=audio if audio > 0 else policy.audio_threshold,
            source="settings",
        )
    return policy
