"""What public and cross-party views must never name: parties that asked not to be named.

A party with ``disclose`` false (and, for a summary, any party with no record in the
catalog) is never named in a public summary, a proof or a manifest diff: not its name or
party id, nor the ids of the agreements it granted, nor the title or ISRC of a recording it
is on. :class:`Undisclosed` gathers those secret texts once; views either withhold a text
that contains one (:meth:`Undisclosed.clean`) or blank each one out (:meth:`Undisclosed.redact`).

A text matches a secret case-insensitively: as a substring for secrets of four characters
or more, as a whole word for shorter ones (so ``"AB"`` does not blank every ``"ABBA"``). A
disclosed text may be withheld for safety; a secret never leaks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from accord.licensing import parties_on
from accord.registry.entities import Catalog

WITHHELD = "(withheld)"
UNDISCLOSED = "(undisclosed)"


class Undisclosed:
    """The secret texts of the parties that must not be named in one view.

    Attributes:
        parties: the hidden party ids.
        agreements: the ids of the agreements they granted.
        recordings: ISRCs of the recordings a hidden party is on (as owner, publisher, artist or
            writer), when those are secret too (a public view); empty for a proof, which is about
            the asker's own recording.
    """

    def __init__(self, catalog: Catalog, hidden: Iterable[str], *, recordings_secret: bool = True) -> None:
        self.parties = frozenset(hidden)
        self.agreements = frozenset(a.agreement_id for a in catalog.agreements.values() if a.licensor in self.parties)
        texts = set(self.parties) | set(self.agreements)
        texts |= {p.name for p in catalog.parties.values() if p.party_id in self.parties}
        on = (i for i, r in catalog.recordings.items() if parties_on(catalog, r) & self.parties)
        self.recordings = frozenset(on) if recordings_secret else frozenset()
        texts |= set(self.recordings) | {catalog.recordings[i].title for i in self.recordings}
        folded = {t.strip().casefold() for t in texts if t.strip()}
        self._long = sorted((t for t in folded if len(t) >= 4), key=lambda t: (-len(t), t))
        words = [re.escape(t) for t in sorted(folded) if len(t) < 4]
        self._short = re.compile(r"(?<!\w)(?:" + "|".join(words) + r")(?!\w)") if words else None
        alternatives = [re.escape(t) for t in self._long]
        alternatives += [r"(?<!\w)" + w + r"(?!\w)" for w in words]
        self._any = re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None

    @classmethod
    def of(cls, catalog: Catalog) -> Undisclosed:
        """The parties of ``catalog`` that asked not to be named."""
        return cls(catalog, {p.party_id for p in catalog.parties.values() if not p.disclose})

    @classmethod
    def to_viewer(cls, catalog: Catalog, viewer: str) -> Undisclosed:
        """What a proof for party ``viewer`` must not name: every other party that asked not to be named."""
        hidden = {p.party_id for p in catalog.parties.values() if not p.disclose and p.party_id != viewer}
        return cls(catalog, hidden, recordings_secret=False)

    def hides(self, value: str) -> bool:
        """Whether ``value`` is a hidden party id or the id of an agreement one granted."""
        return value in self.parties or value in self.agreements

    def leaks(self, text: str) -> bool:
        folded = text.casefold()
        return any(t in folded for t in self._long) or bool(self._short and self._short.search(folded))

    def clean(self, text: str) -> str:
        """``text``, or :data:`WITHHELD` when it names a secret."""
        return WITHHELD if self.leaks(text) else text

    def redact(self, text: str) -> str:
        """``text`` with every secret in it replaced by :data:`UNDISCLOSED`."""
        if self._any is None:
            return text
        out = self._any.sub(UNDISCLOSED, text)
        return out if not self.leaks(out) else WITHHELD  # a secret split by casefolding: withhold it all
