"""Styles and tempos: what the model is told a piece is, and how fast it is played.

A tune's style comes from its ABC ``R:`` field when it has one (normalised: ``R: REEL``,
``double jig``, ``slipjig``), else from the section of O'Neill's book it is printed in,
else from its title (``... Reel``, ``Quick Step``), else from a compound meter that names
a dance (9/8 slip jig, 6/8 jig, 12/8 slide), else it is an air. A piece's tempo comes from
its score when that is usable, else from its style.
"""

from __future__ import annotations

import re
from fractions import Fraction

from accord.demo.corpus import CHORALE

STYLE_ALIASES: dict[str, str] = {
    "reel": "reel",
    "rant": "reel",  # the Scottish rant is a reel
    "jig": "jig",
    "double jig": "jig",
    "single jig": "jig",
    "slip jig": "slip jig",
    "hop jig": "slip jig",
    "hornpipe": "hornpipe",
    "clog": "clog",
    "lancashire clog": "clog",
    "strathspey": "strathspey",
    "highland fling": "highland fling",
    "fling": "highland fling",
    "air": "air",
    "slow air": "air",
    "song": "air",
    "lament": "air",
    "planxty": "air",
    "waltz": "waltz",
    "walkaround": "walkaround",
    "walk around": "walkaround",
    "slide": "slide",
    "march": "march",
    "quick step": "march",
    "quickstep": "march",
    "polka": "polka",
    "minuet": "minuet",
    "gavotte": "gavotte",
    "gavot": "gavotte",
    "set dance": "set dance",
    "long dance": "set dance",
    "schottische": "schottische",
    "mazurka": "mazurka",
    "country dance": "country dance",
}
"""Spellings of a tune type (lower case, separators as spaces) → the style the model sees."""

_ONEILL_SECTIONS: tuple[tuple[int, int, str], ...] = (
    (1, 700, "air"),  # airs, songs and O'Carolan's pieces
    (701, 1100, "jig"),  # double jigs
    (1101, 1175, "slip jig"),
    (1176, 1555, "reel"),
    (1556, 1780, "hornpipe"),
    (1781, 1800, "set dance"),  # long dances
    (1801, 1850, "march"),  # marches and miscellaneous
)
"""O'Neill's 1850 is printed by tune type; the book's sections name untagged tunes."""

_METER_STYLES = {"9/8": "slip jig", "6/8": "jig", "12/8": "slide"}
"""Compound meters that name a dance on their own; anything else untagged is an air."""


def normalise_style(value: str) -> str:
    """A tune type as written (``R: REEL``, ``double jig``, ``slipjig``) → a style, or ``""``."""
    value = re.sub(r"^\s*R:", "", value, flags=re.IGNORECASE)
    text = re.sub(r"[^a-z]+", " ", value.lower()).strip()
    if not text:
        return ""
    if text in STYLE_ALIASES:
        return STYLE_ALIASES[text]
    squashed = text.replace(" ", "")
    for alias, style in STYLE_ALIASES.items():
        if squashed == alias.replace(" ", ""):
            return style
    return _title_style(text)  # "reel (Scotch)", "hornpipe, 2nd setting"


def _title_style(title: str) -> str:
    """A style named in a title (``Acacia -- Reel``, ``Quick Step. 25th Regt.``), or ``""``."""
    text = " " + re.sub(r"[^a-z]+", " ", title.lower()) + " "
    # longest spellings first, so "slip jig" is not read as "jig"
    for alias in sorted(STYLE_ALIASES, key=len, reverse=True):
        if f" {alias} " in text or f" {alias}s " in text:
            return STYLE_ALIASES[alias]
    return ""


def infer_style(collection: str, name: str, r_field: str, title: str, meter: str) -> tuple[str, str]:
    """The style of a tune and where it came from (``r_field``, ``book_section`` ...)."""
    style = normalise_style(r_field)
    if style:
        return style, "r_field"
    if collection == "oneills1850" and name.isdigit():
        for first, last, section_style in _ONEILL_SECTIONS:
            if first <= int(name) <= last:
                return section_style, "book_section"
    style = _title_style(title)
    if style:
        return style, "title"
    if meter in _METER_STYLES:
        return _METER_STYLES[meter], "meter"
    return "air", "default"


_BARS_PER_MINUTE = {
    "reel": 50,
    "hornpipe": 40,
    "clog": 40,
    "strathspey": 32,
    "highland fling": 34,
    "jig": 58,  # Ryan's "jigs" in 2/4 (compound-time jigs use _DOTTED_BPM)
    "march": 56,
    "polka": 60,
    "walkaround": 56,
    "waltz": 50,
    "minuet": 40,
    "set dance": 40,
}
"""Dance tempos in simple time, in bars per minute: a 2/4 reel written in sixteenths and
a C| reel written in eighths come out at the same speed."""

_DOTTED_BPM = {"jig": 116, "slip jig": 116, "slide": 130, "march": 108, "air": 60}
"""Compound time (6/8, 9/8, 12/8): dotted-quarter beats per minute."""

_QUARTER_BPM_DEFAULT = {"air": 72, CHORALE: 76}

_TEMPO_RANGE = (30, 300)
"""Quarter-note BPM outside this range is an encoding slip: the style's tempo is used."""


def tempo_in_range(bpm: int) -> bool:
    """Whether a score's quarter-note BPM is plausible (else it is an encoding slip)."""
    return _TEMPO_RANGE[0] <= bpm <= _TEMPO_RANGE[1]


def default_tempo(style: str, meter: str) -> int:
    """Quarter-note BPM for a piece whose score gives no (usable) tempo."""
    numerator, _, denominator = meter.partition("/")
    if denominator == "8" and numerator in ("6", "9", "12"):
        return round(_DOTTED_BPM.get(style, 100) * 1.5)
    if style in _BARS_PER_MINUTE and numerator.isdigit() and denominator.isdigit():
        return round(_BARS_PER_MINUTE[style] * Fraction(4 * int(numerator), int(denominator)))
    return _QUARTER_BPM_DEFAULT.get(style, 96)


_Q_RE = re.compile(r"^Q:\s*(?:\"[^\"]*\"\s*)?(\d+)\s*/\s*(\d+)\s*=\s*(\d+)", re.MULTILINE)


def abc_tempo(block: str) -> int | None:
    """Quarter-note BPM of an ABC ``Q:1/4=120`` / ``Q:3/8=116`` field (bare numbers: None).

    Read here rather than by music21, which takes ``Q:1/4 =50`` for a 5-quarter beat.
    """
    m = _Q_RE.search(block)
    if m is None or int(m.group(2)) == 0:
        return None
    beat_quarters = Fraction(4 * int(m.group(1)), int(m.group(2)))
    return round(int(m.group(3)) * beat_quarters)
