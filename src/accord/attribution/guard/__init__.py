"""The replication guard: proof that an output copies no catalog work or recording.

Two checks against the **whole** registry (licensed or not):

* **symbolic** (the main one): melody and bass lines (:mod:`.lines`) as key- and
  tempo-invariant n-grams (:mod:`.ngrams`) in an inverted index weighted by rarity
  (:mod:`.index`); the best candidates re-scored by local alignment (:mod:`.align`), which
  reports the longest shared passage and where it sits in both pieces;
* **audio**: landmark fingerprints (:mod:`accord.media.fingerprint`) of the output's render
  against the catalog's audio and MIDI renders (:mod:`.audio`).

Thresholds come from the catalog's own borrowing level (:mod:`.policy`); the verdict and its
evidence are :class:`GuardVerdict` (:mod:`.verdict`); :mod:`.evaluate` measures the guard
on planted copies. Generation calls :func:`guard_output`.
"""

from accord.attribution.guard.check import Guard, guard_output
from accord.attribution.guard.policy import GuardPolicy, load_policy
from accord.attribution.guard.verdict import BLOCKED, CLEAR, Evidence, GuardVerdict

__all__ = ["BLOCKED", "CLEAR", "Evidence", "Guard", "GuardPolicy", "GuardVerdict", "guard_output", "load_policy"]
