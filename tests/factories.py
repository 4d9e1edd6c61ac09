"""In-memory builders for tests: small catalogs written in code, with readable defaults.

Shares are given in percent (``{"P-LABEL": 60, "P-CO": 40}``; ``int``, ``Decimal``,
``Fraction`` or a string like ``"33.3334"``) and converted to ppm exactly, or in parts per
million with :func:`ppm` (``{"P-LABEL": ppm(333_334)}``). Floats are refused, as they are
everywhere near shares.

    cat = catalog(
        recording("GBXYZ2600001", owners={"P-LABEL": 100}, works=("W-0001",)),
        work("W-0001", owners={"P-PUB": 100}, writers=("P-WRITER",)),
        agreement("AGR-LABEL", "P-LABEL"),
        agreement("AGR-PUB", "P-PUB", side="publishing"),
    )
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from accord.registry.entities import (
    GRANTABLE_USES,
    PPM_WHOLE,
    Agreement,
    Catalog,
    CommercialTerms,
    Coverage,
    ModelScope,
    Money,
    OptOut,
    OptOutScope,
    Party,
    PartyKind,
    Recording,
    Share,
    Side,
    Territory,
    TrainingPoolMethod,
    Use,
    Work,
)

JAN_1_2026 = datetime(2026, 1, 1, tzinfo=UTC)
"""When agreements and opt-outs start unless told otherwise."""
AT = datetime(2026, 6, 1, tzinfo=UTC)
"""A default instant to decide at: after every default start."""
ISRC_1 = "GBXYZ2600001"
ISRC_2 = "GBXYZ2600002"
WORK_1 = "W-0001"
WORK_2 = "W-0002"
ALL_USES: tuple[str, ...] = ("train", "generate", "remix")


class Ppm(int):
    """A share given in parts per million rather than in percent."""


def ppm(value: int) -> Ppm:
    """Mark a share as parts per million: ``ppm(333_334)``."""
    return Ppm(value)


ShareValue = int | str | Decimal | Fraction
Owners = Mapping[str, ShareValue] | Iterable[tuple[str, ShareValue]]


def to_ppm(value: ShareValue) -> int:
    """A percent (or :class:`Ppm`) as exact integer ppm; refuses floats and fractions of a ppm."""
    if isinstance(value, Ppm):
        return int(value)
    if isinstance(value, bool | float):
        raise TypeError(f"share {value!r}: give percent as int, str, Decimal or Fraction")
    exact = Fraction(value) * (PPM_WHOLE // 100)
    if exact.denominator != 1:
        raise ValueError(f"share {value!r}% is not a whole number of ppm")
    return int(exact)


def shares(owners: Owners) -> tuple[Share, ...]:
    """Shares from ``{party: percent}`` or ``[(party, percent), ...]`` (repeats kept)."""
    pairs = owners.items() if isinstance(owners, Mapping) else owners
    return tuple(Share(party_id, to_ppm(value)) for party_id, value in pairs)


def party(party_id: str, kind: PartyKind | str = PartyKind.LABEL, name: str = "") -> Party:
    return Party(party_id=party_id, kind=PartyKind(kind), name=name or party_id.removeprefix("P-").title())


def work(
    work_id: str = WORK_1,
    owners: Owners | None = None,
    writers: Iterable[str] = (),
    *,
    title: str = "",
    iswc: str | None = None,
) -> Work:
    """A work owned 100% by ``P-PUB`` unless ``owners`` says otherwise."""
    return Work(
        work_id=work_id,
        title=title or f"Song {work_id}",
        iswc=iswc,
        writers=tuple(writers),
        shares=shares({"P-PUB": 100} if owners is None else owners),
    )


def recording(
    isrc: str = ISRC_1,
    owners: Owners | None = None,
    works: Iterable[str] = (WORK_1,),
    artists: Iterable[str] = (),
    *,
    title: str = "",
    duration_ms: int = 180_000,
    genre: str = "",
) -> Recording:
    """A recording owned 100% by ``P-LABEL``, embodying ``W-0001``, unless told otherwise."""
    return Recording(
        isrc=isrc,
        title=title or f"Track {isrc}",
        artists=tuple(artists),
        duration_ms=duration_ms,
        works=tuple(works),
        shares=shares({"P-LABEL": 100} if owners is None else owners),
        genre=genre,
    )


def territories(spec: str | Iterable[str] | Territory = "worldwide", exclude: Iterable[str] = ()) -> Territory:
    """``"worldwide"`` (minus ``exclude``), one code, or a list of ISO 3166-1 alpha-2 codes."""
    if isinstance(spec, Territory):
        return spec
    if spec == "worldwide":
        return Territory(worldwide=True, exclude=frozenset(c.upper() for c in exclude))
    codes = [spec] if isinstance(spec, str) else list(spec)
    return Territory(include=frozenset(c.upper() for c in codes))


def agreement(
    agreement_id: str,
    licensor: str,
    side: Side | str = Side.MASTER,
    uses: Iterable[Use | str] = ALL_USES,
    territory: str | Iterable[str] | Territory = "worldwide",
    *,
    exclude: Iterable[str] = (),
    start: datetime = JAN_1_2026,
    end: datetime | None = None,
    recordings: Iterable[str] | None = None,
    works: Iterable[str] | None = None,
    model_scope: ModelScope | str = ModelScope.ANY,
    pool_share: ShareValue = 30,
    master_split: ShareValue = 50,
    training_pool_method: TrainingPoolMethod | str = TrainingPoolMethod.EQUAL_PER_WORK,
    minimum_guarantee: Money | None = None,
    advance: Money | None = None,
) -> Agreement:
    """An agreement over the licensor's whole catalog, unless ``recordings``/``works`` list items."""
    listed = recordings is not None or works is not None
    coverage = Coverage(
        catalog=not listed,
        recordings=frozenset(recordings or ()),
        works=frozenset(works or ()),
    )
    return Agreement(
        agreement_id=agreement_id,
        licensor=licensor,
        side=Side(side),
        uses=frozenset(Use(u) for u in uses),
        territory=territories(territory, exclude),
        start=start,
        end=end,
        coverage=coverage,
        terms=CommercialTerms(
            pool_share_ppm=to_ppm(pool_share),
            master_split_ppm=to_ppm(master_split),
            training_pool_method=TrainingPoolMethod(training_pool_method),
            minimum_guarantee=minimum_guarantee,
            advance=advance,
        ),
        model_scope=ModelScope(model_scope),
    )


def optout(
    optout_id: str,
    party_id: str,
    scope: OptOutScope | str = OptOutScope.RECORDING,
    target: str = ISRC_1,
    uses: Iterable[Use | str] | str = ALL_USES,
    effective: datetime = JAN_1_2026,
) -> OptOut:
    """An opt-out of every grantable use (``uses="all"`` too); a catalog one has target ``""``."""
    scope = OptOutScope(scope)
    chosen = GRANTABLE_USES if uses == "all" else frozenset(Use(u) for u in uses)
    return OptOut(
        optout_id=optout_id,
        party_id=party_id,
        scope=scope,
        target="" if scope is OptOutScope.CATALOG else target,
        uses=frozenset(chosen),
        effective=effective,
    )


Record = Party | Work | Recording | Agreement | OptOut


def catalog(*records: Record, as_of: datetime | None = None) -> Catalog:
    """A catalog of the records given, in any order; every party they name gets a record."""
    parties = [r for r in records if isinstance(r, Party)]
    works = [r for r in records if isinstance(r, Work)]
    recs = [r for r in records if isinstance(r, Recording)]
    agreements = [r for r in records if isinstance(r, Agreement)]
    optouts = [r for r in records if isinstance(r, OptOut)]
    named: dict[str, PartyKind] = {}  # the first role seen decides the kind
    for rec in recs:
        named.update((s.party_id, PartyKind.LABEL) for s in rec.shares if s.party_id not in named)
        named.update((a, PartyKind.ARTIST) for a in rec.artists if a not in named)
    for w in works:
        named.update((s.party_id, PartyKind.PUBLISHER) for s in w.shares if s.party_id not in named)
        named.update((p, PartyKind.WRITER) for p in w.writers if p not in named)
    for a in agreements:
        named.setdefault(a.licensor, PartyKind.LABEL if a.side == Side.MASTER else PartyKind.PUBLISHER)
    for o in optouts:
        named.setdefault(o.party_id, PartyKind.ARTIST)
    given = {p.party_id for p in parties}
    parties += [party(pid, kind) for pid, kind in named.items() if pid not in given]
    return Catalog.of(
        parties=parties,
        works=works,
        recordings=recs,
        agreements=agreements,
        optouts=optouts,
        as_of=as_of,
    )


def fully_licensed_catalog() -> Catalog:
    """One recording (``GBXYZ2600001``, one work ``W-0001``), licensed for every use worldwide.

    P-LABEL owns the master and P-PUB the song; P-ARTIST performs it, P-WRITER wrote it.
    Agreements: ``AGR-LABEL-MASTER`` and ``AGR-PUB-PUBLISHING``, from 2026-01-01, open-ended.
    """
    return catalog(
        recording(ISRC_1, owners={"P-LABEL": 100}, works=(WORK_1,), artists=("P-ARTIST",)),
        work(WORK_1, owners={"P-PUB": 100}, writers=("P-WRITER",)),
        agreement("AGR-LABEL-MASTER", "P-LABEL", side="master"),
        agreement("AGR-PUB-PUBLISHING", "P-PUB", side="publishing"),
    )
