"""The style classifier: simple features of the notes, logistic regression, and what it is used to measure."""

from __future__ import annotations

import numpy as np
import pytest
import symusic

from accord.errors import ValidationError
from accord.model.style import FEATURE_NAMES, StyleClassifier, piece_features

TPQ = 480


def piece(
    *,
    meter: tuple[int, int],
    step: float,
    duration: float,
    tonic: int,
    minor: bool,
    chord: int = 1,
    bars: int = 4,
    program: int = 0,
    tempo: float = 120.0,
) -> bytes:
    """Notes every ``step`` quarters up a scale from ``tonic``, ``chord`` notes at each onset."""
    scale = (0, 2, 3, 5, 7, 8, 10) if minor else (0, 2, 4, 5, 7, 9, 11)
    score = symusic.Score(TPQ)
    score.tempos.append(symusic.Tempo(0, qpm=tempo))
    score.time_signatures.append(symusic.TimeSignature(0, *meter))
    track = symusic.Track(program=program)
    quarters = bars * 4 * meter[0] / meter[1]
    n = 0
    while n * step < quarters:
        root = 60 + tonic + scale[n % 7] + 12 * ((n // 7) % 2)
        for voice in range(chord):
            track.notes.append(symusic.Note(round(n * step * TPQ), round(duration * TPQ), root - 5 * voice, 80))
        n += 1
    score.tracks.append(track)
    return bytes(score.dumps_midi())


def running_line(tonic: int, minor: bool = False, **kw: object) -> bytes:
    return piece(meter=(6, 8), step=0.5, duration=0.5, tonic=tonic, minor=minor, **kw)  # type: ignore[arg-type]


def chorale(tonic: int, minor: bool = False, **kw: object) -> bytes:
    return piece(meter=(4, 4), step=1.0, duration=1.0, tonic=tonic, minor=minor, chord=4, **kw)  # type: ignore[arg-type]


def test_features_are_key_invariant_and_ignore_tempo_and_instrument():
    base = piece_features(running_line(0))
    assert base.shape == (len(FEATURE_NAMES),) and np.isfinite(base).all()
    register = FEATURE_NAMES.index("mean_pitch")  # the one feature a transposition moves
    for tonic in (2, 5, 7, 11):  # the same tune in another key: the same degrees, intervals and rhythm
        moved = piece_features(running_line(tonic))
        np.testing.assert_allclose(np.delete(moved, register), np.delete(base, register), atol=1e-9)
        assert moved[register] == pytest.approx(base[register] + tonic / 127)
    np.testing.assert_allclose(piece_features(running_line(0, program=40, tempo=70.0)), base, atol=1e-9)
    assert not np.allclose(piece_features(chorale(0)), base)
    with pytest.raises(ValidationError, match="no pitched notes"):
        piece_features(bytes(symusic.Score(TPQ).dumps_midi()))


def test_the_classifier_tells_running_lines_from_four_part_chords_in_keys_it_never_saw():
    train = [(running_line(t, m), "jig") for t in (0, 2, 4) for m in (False, True)]
    train += [(chorale(t, m), "chorale") for t in (0, 2, 4) for m in (False, True)]
    x = np.stack([piece_features(midi) for midi, _ in train])
    classifier = StyleClassifier.fit(x, [s for _, s in train], min_pieces=3)
    assert classifier.classes == ("chorale", "jig")
    held = [(running_line(t, m, bars=3), "jig") for t in (7, 9) for m in (False, True)]
    held += [(chorale(t, m, bars=3), "chorale") for t in (7, 9) for m in (False, True)]
    report = classifier.accuracy(np.stack([piece_features(m) for m, _ in held]), [s for _, s in held])
    assert report == {"pieces": 8, "accuracy": 1.0, "per_style": {"chorale": 1.0, "jig": 1.0}}
    again = StyleClassifier.fit(x, [s for _, s in train], min_pieces=3)  # deterministic
    np.testing.assert_array_equal(again.weights, classifier.weights)


def test_the_classifier_cannot_be_fooled_by_labels_it_has_no_signal_for():
    """Shuffled labels on identical pieces: no better than the majority class, so accuracy means something."""
    rng = np.random.default_rng(0)
    x = np.stack([piece_features(running_line(0))] * 20)
    labels = [str(s) for s in rng.choice(["a", "b"], size=20)]
    classifier = StyleClassifier.fit(x, labels, min_pieces=3)
    predicted = set(classifier.predict(x))
    assert len(predicted) == 1  # the same features always get the same answer


def test_styles_with_too_few_pieces_are_left_out_and_two_are_needed():
    x = np.stack([piece_features(running_line(t)) for t in range(12)] + [piece_features(chorale(0))])
    labels = ["jig"] * 6 + ["reel"] * 6 + ["chorale"]
    classifier = StyleClassifier.fit(x, labels, min_pieces=5)
    assert classifier.classes == ("jig", "reel")
    assert classifier.accuracy(x[-1:], ["chorale"]) == {"pieces": 0, "accuracy": None, "per_style": {}}
    with pytest.raises(ValidationError, match="two styles"):
        StyleClassifier.fit(x, ["jig"] * 12 + ["chorale"], min_pieces=5)
