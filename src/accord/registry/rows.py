"""Conversions between domain records and SQL rows (both directions, nothing else)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from accord.registry.entities import (
    Agreement,
    CommercialTerms,
    Coverage,
    GuaranteeSettlement,
    GuaranteeTerm,
    MediaRef,
    ModelScope,
    Money,
    OptOut,
    OptOutScope,
    Party,
    PartyKind,
    Recording,
    Share,
    Side,
    Source,
    Territory,
    TrainingPoolMethod,
    Use,
    Work,
)

Row = Mapping[str, Any]


def source_values(s: Source) -> dict[str, Any]:
    return {
        "source_id": s.source_id,
        "title": s.title,
        "origin": s.origin,
        "terms": s.terms,
        "public_domain": s.public_domain,
    }


def source_of(r: Row) -> Source:
    return Source(r["source_id"], r["title"], r["origin"], r["terms"], bool(r["public_domain"]))


def party_values(p: Party) -> dict[str, Any]:
    return {
        "party_id": p.party_id,
        "kind": p.kind.value,
        "name": p.name,
        "ipi": p.ipi,
        "isni": p.isni,
        "dpid": p.dpid,
        "territory": p.territory,
        "disclose": p.disclose,
    }


def party_of(r: Row) -> Party:
    return Party(
        r["party_id"],
        PartyKind(r["kind"]),
        r["name"],
        r["ipi"],
        r["isni"],
        r["dpid"],
        r["territory"],
        bool(r["disclose"]),
    )


def work_values(w: Work) -> dict[str, Any]:
    return {"work_id": w.work_id, "iswc": w.iswc, "title": w.title, "writers": list(w.writers)}


def work_of(r: Row, shares: Iterable[Share]) -> Work:
    return Work(
        r["work_id"],
        r["title"],
        r["iswc"],
        tuple(r["writers"]),
        tuple(sorted(shares, key=lambda s: s.party_id)),
    )


def recording_values(rec: Recording) -> dict[str, Any]:
    return {
        "isrc": rec.isrc,
        "title": rec.title,
        "artists": list(rec.artists),
        "duration_ms": rec.duration_ms,
        "genre": rec.genre,
        "works": list(rec.works),
        "source_id": rec.source,
        "extra": dict(rec.metadata),
    }


def recording_of(r: Row, shares: Iterable[Share], media: Iterable[MediaRef]) -> Recording:
    return Recording(
        isrc=r["isrc"],
        title=r["title"],
        artists=tuple(r["artists"]),
        duration_ms=int(r["duration_ms"]),
        works=tuple(r["works"]),
        shares=tuple(sorted(shares, key=lambda s: s.party_id)),
        genre=r["genre"],
        media=tuple(sorted(media, key=lambda m: m.sha256)),
        source=r["source_id"],
        metadata=tuple(sorted((str(k), str(v)) for k, v in r["extra"].items())),
    )


def _money(micros: int | None, currency: str | None) -> Money | None:
    return None if micros is None or currency is None else Money(int(micros), currency)


def agreement_values(a: Agreement) -> dict[str, Any]:
    t = a.terms
    return {
        "agreement_id": a.agreement_id,
        "licensor": a.licensor,
        "side": a.side.value,
        "uses": sorted(u.value for u in a.uses),
        "worldwide": a.territory.worldwide,
        "territories_include": sorted(a.territory.include),
        "territories_exclude": sorted(a.territory.exclude),
        "starts_at": a.start,
        "ends_at": a.end,
        "coverage_catalog": a.coverage.catalog,
        "coverage_recordings": sorted(a.coverage.recordings),
        "coverage_works": sorted(a.coverage.works),
        "pool_share_ppm": t.pool_share_ppm,
        "master_split_ppm": t.master_split_ppm,
        "training_pool_method": t.training_pool_method.value,
        "minimum_guarantee_micros": t.minimum_guarantee.micros if t.minimum_guarantee else None,
        "minimum_guarantee_currency": t.minimum_guarantee.currency if t.minimum_guarantee else None,
        "advance_micros": t.advance.micros if t.advance else None,
        "advance_currency": t.advance.currency if t.advance else None,
        "model_scope": a.model_scope.value,
        "guarantee_term": t.guarantee_term.value,
        "guarantee_settlement": t.guarantee_settlement.value,
    }


def agreement_of(r: Row) -> Agreement:
    return Agreement(
        agreement_id=r["agreement_id"],
        licensor=r["licensor"],
        side=Side(r["side"]),
        uses=frozenset(Use(u) for u in r["uses"]),
        territory=Territory(
            worldwide=bool(r["worldwide"]),
            include=frozenset(r["territories_include"]),
            exclude=frozenset(r["territories_exclude"]),
        ),
        start=r["starts_at"],
        end=r["ends_at"],
        coverage=Coverage(
            catalog=bool(r["coverage_catalog"]),
            recordings=frozenset(r["coverage_recordings"]),
            works=frozenset(r["coverage_works"]),
        ),
        terms=CommercialTerms(
            pool_share_ppm=int(r["pool_share_ppm"]),
            master_split_ppm=int(r["master_split_ppm"]),
            training_pool_method=TrainingPoolMethod(r["training_pool_method"]),
            minimum_guarantee=_money(r["minimum_guarantee_micros"], r["minimum_guarantee_currency"]),
            advance=_money(r["advance_micros"], r["advance_currency"]),
            guarantee_term=GuaranteeTerm(r["guarantee_term"]),
            guarantee_settlement=GuaranteeSettlement(r["guarantee_settlement"]),
        ),
        model_scope=ModelScope(r["model_scope"]),
    )


def optout_values(o: OptOut) -> dict[str, Any]:
    return {
        "optout_id": o.optout_id,
        "party_id": o.party_id,
        "scope": o.scope.value,
        "target": o.target,
        "uses": sorted(u.value for u in o.uses),
        "effective": o.effective,
    }


def optout_of(r: Row) -> OptOut:
    return OptOut(
        optout_id=r["optout_id"],
        party_id=r["party_id"],
        scope=OptOutScope(r["scope"]),
        target=r["target"],
        uses=frozenset(Use(u) for u in r["uses"]),
        effective=r["effective"],
    )
