"""The registry's domain records: immutable, in the domain's words.

A change is a new record (a new version, an amendment), never an edit. Shares are
integer parts per million (ppm); 1,000,000 ppm is 100%.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

PPM_WHOLE = 1_000_000
"""100% in parts per million: every set of shares sums to exactly this."""


class PartyKind(StrEnum):
    LABEL = "label"
    PUBLISHER = "publisher"
    ARTIST = "artist"
    WRITER = "writer"
    OPERATOR = "operator"


class Side(StrEnum):
    """Which right an agreement licenses: the recording (master) or the song (publishing)."""

    MASTER = "master"
    PUBLISHING = "publishing"


class Use(StrEnum):
    """What the licensed material may be used for."""

    TRAIN = "train"
    GENERATE = "generate"
    REMIX = "remix"
    VOICE = "voice"  # reserved: the model is symbolic, no agreement may grant it yet


GRANTABLE_USES: frozenset[Use] = frozenset({Use.TRAIN, Use.GENERATE, Use.REMIX})


class ModelScope(StrEnum):
    """Which models an agreement lets use the licensed material."""

    ANY = "any"
    APPROVED_VERSIONS = "approved_versions"


class TrainingPoolMethod(StrEnum):
    EQUAL_PER_WORK = "equal_per_work"
    PRO_RATA_DURATION = "pro_rata_duration"


class GuaranteeTerm(StrEnum):
    """How long a minimum guarantee's term runs (terms start at the month of the agreement's start)."""

    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"
    AGREEMENT = "agreement"


class GuaranteeSettlement(StrEnum):
    """When a term's shortfall is paid: once at the term's end, or pro rata in every period of it."""

    TERM_END = "term_end"
    PRO_RATA = "pro_rata"


class OptOutScope(StrEnum):
    RECORDING = "recording"
    WORK = "work"
    CATALOG = "catalog"


@dataclass(frozen=True)
class Share:
    """One owner's part of a recording (master side) or a work (publishing side).

    Attributes:
        party_id: the owner.
        ppm: the share in parts per million (0..1,000,000).
    """

    party_id: str
    ppm: int


@dataclass(frozen=True)
class Party:
    """A label, publisher, artist, writer or the operator.

    Attributes:
        party_id: stable id chosen by the delivering party (``P-AURORA``).
        kind: what sort of party it is.
        name: display name.
        ipi: IPI name number (compact), if known.
        isni: ISNI (compact), if known.
        dpid: DDEX party id, if known.
        territory: ISO 3166-1 alpha-2 home territory, if known.
        disclose: whether public summaries may name it and its items (some licensors ask not to be).
    """

    party_id: str
    kind: PartyKind
    name: str
    ipi: str | None = None
    isni: str | None = None
    dpid: str | None = None
    territory: str | None = None
    disclose: bool = True


@dataclass(frozen=True)
class Work:
    """A composition, owned on the publishing side.

    Attributes:
        work_id: the delivering party's work id.
        title: the work's title.
        iswc: ISWC (compact, ``T0345246801``), if known.
        writers: composer and lyricist party ids.
        shares: publishing-side owners (publishers, and writers holding an unpublished share).
    """

    work_id: str
    title: str
    iswc: str | None = None
    writers: tuple[str, ...] = ()
    shares: tuple[Share, ...] = ()


@dataclass(frozen=True)
class MediaRef:
    """A media file of a recording, by content hash.

    Attributes:
        sha256: hex sha256 of the file: its name in the media store.
        kind: ``midi`` or ``audio``.
        size: bytes.
        filename: the file's name in the delivery it came in.
    """

    sha256: str
    kind: str
    size: int
    filename: str = ""


@dataclass(frozen=True)
class Recording:
    """A master recording.

    Attributes:
        isrc: ISRC (compact, ``GBXYZ2600001``): the recording's key.
        title: its title.
        artists: performing artist party ids.
        duration_ms: its length in milliseconds.
        works: ids of the works it embodies.
        shares: master owners.
        genre: style / genre, lower case, or ``""``.
        media: its media files.
        source: the id of the source it comes from, or ``""``.
        metadata: free-form key/values from the delivery (sorted pairs).
    """

    isrc: str
    title: str
    artists: tuple[str, ...] = ()
    duration_ms: int = 0
    works: tuple[str, ...] = ()
    shares: tuple[Share, ...] = ()
    genre: str = ""
    media: tuple[MediaRef, ...] = ()
    source: str = ""
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def midi(self) -> MediaRef | None:
        """The recording's MIDI file a continuation, a remix or the memorisation audit reads: its first
        MIDI file by hash (``None``: it has none)."""
        return next((m for m in sorted(self.media, key=lambda m: m.sha256) if m.kind == "midi"), None)


@dataclass(frozen=True)
class Territory:
    """Where an agreement applies: listed ISO 3166-1 codes, or worldwide minus exclusions.

    Attributes:
        worldwide: whether every territory is in, except ``exclude``.
        include: the territories in (when not worldwide).
        exclude: the territories out (when worldwide).
    """

    worldwide: bool = False
    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()

    def covers(self, code: str) -> bool:
        code = code.upper()
        if self.worldwide:
            return code not in self.exclude
        return code in self.include

    def describe(self) -> str:
        if self.worldwide:
            if self.exclude:
                return "worldwide except " + ", ".join(sorted(self.exclude))
            return "worldwide"
        return ", ".join(sorted(self.include))


@dataclass(frozen=True)
class Money:
    """An amount in integer micro-units of one currency (1 EUR = 1,000,000).

    Attributes:
        micros: the amount in millionths of the currency's major unit.
        currency: ISO 4217 code.
    """

    micros: int
    currency: str


@dataclass(frozen=True)
class CommercialTerms:
    """What an agreement pays.

    Attributes:
        pool_share_ppm: share of net revenue paid into the rights pool.
        master_split_ppm: the master side's part of the pool; publishing gets the rest.
        training_pool_method: how the training pool is split among a manifest's items.
        minimum_guarantee: the least the licensor is paid per guarantee term, if any.
        advance: paid up front and recouped before anything else is paid, if any.
        guarantee_term: the minimum guarantee's term (monthly, quarterly, yearly, the agreement's).
        guarantee_settlement: the shortfall paid once at the term's end, or pro rata per period.
    """

    pool_share_ppm: int
    master_split_ppm: int = 500_000
    training_pool_method: TrainingPoolMethod = TrainingPoolMethod.EQUAL_PER_WORK
    minimum_guarantee: Money | None = None
    advance: Money | None = None
    guarantee_term: GuaranteeTerm = GuaranteeTerm.MONTHLY
    guarantee_settlement: GuaranteeSettlement = GuaranteeSettlement.TERM_END


@dataclass(frozen=True)
class Coverage:
    """What an agreement covers: the licensor's whole catalog on its side, or listed items.

    Attributes:
        catalog: the whole catalog the licensor owns on the agreement's side.
        recordings: ISRCs covered (master side, when not the whole catalog).
        works: work ids covered (publishing side, when not the whole catalog).
    """

    catalog: bool = False
    recordings: frozenset[str] = frozenset()
    works: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Agreement:
    """A licence granted by one licensor, for one side, to the operator.

    Attributes:
        agreement_id: its id.
        licensor: the granting party.
        side: master or publishing.
        uses: the uses granted.
        territory: where it applies.
        start: in force from (inclusive, UTC).
        end: in force until (exclusive, UTC); ``None`` is open-ended.
        coverage: what it covers.
        terms: what it pays.
        model_scope: any model, or only versions the licensor approves one by one.
    """

    agreement_id: str
    licensor: str
    side: Side
    uses: frozenset[Use]
    territory: Territory
    start: datetime
    end: datetime | None
    coverage: Coverage
    terms: CommercialTerms
    model_scope: ModelScope = ModelScope.ANY

    def in_force(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


@dataclass(frozen=True)
class OptOut:
    """A party's withdrawal of consent for some or all uses.

    Attributes:
        optout_id: its id.
        party_id: who opts out (an owner, artist, writer or publisher of the target).
        scope: a recording, a work, or everything the party is on.
        target: ISRC or work id (``""`` for a catalog opt-out).
        uses: the uses withdrawn.
        effective: in force from (UTC).
    """

    optout_id: str
    party_id: str
    scope: OptOutScope
    target: str
    uses: frozenset[Use]
    effective: datetime

    def in_force(self, at: datetime) -> bool:
        return self.effective <= at


@dataclass(frozen=True)
class Source:
    """Where delivered material comes from, and on what terms.

    Attributes:
        source_id: referenced by recordings.
        title: what it is.
        origin: where the encodings come from.
        terms: the terms it is used under.
        public_domain: whether the underlying compositions are in the public domain.
    """

    source_id: str
    title: str
    origin: str = ""
    terms: str = ""
    public_domain: bool = False


@dataclass(frozen=True)
class Catalog:
    """The registry's facts as of one instant: what the licensing policy reads.

    Attributes:
        parties: by party id.
        works: by work id.
        recordings: by ISRC.
        agreements: by agreement id.
        optouts: by opt-out id.
        as_of: the instant these facts were read for (``None``: built in memory).
        sources: by source id.
    """

    parties: Mapping[str, Party] = field(default_factory=dict)
    works: Mapping[str, Work] = field(default_factory=dict)
    recordings: Mapping[str, Recording] = field(default_factory=dict)
    agreements: Mapping[str, Agreement] = field(default_factory=dict)
    optouts: Mapping[str, OptOut] = field(default_factory=dict)
    as_of: datetime | None = None
    sources: Mapping[str, Source] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        *,
        parties: Iterable[Party] = (),
        works: Iterable[Work] = (),
        recordings: Iterable[Recording] = (),
        agreements: Iterable[Agreement] = (),
        optouts: Iterable[OptOut] = (),
        as_of: datetime | None = None,
        sources: Iterable[Source] = (),
    ) -> Catalog:
        """Build a catalog from records (the last record wins on a repeated id)."""
        return cls(
            parties={p.party_id: p for p in parties},
            works={w.work_id: w for w in works},
            recordings={r.isrc: r for r in recordings},
            agreements={a.agreement_id: a for a in agreements},
            optouts={o.optout_id: o for o in optouts},
            as_of=as_of,
            sources={s.source_id: s for s in sources},
        )
