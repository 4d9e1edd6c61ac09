"""Public summaries of training content: what a manifest holds, and on what licensing basis.

In the spirit of the public training-content summaries AI regulation asks model providers
to publish (the EU AI Act's template for general-purpose AI models): totals, hours, who
licensed the material under which agreements, genres, sources, the time span licensed.
:func:`summarize` builds a deterministic JSON-ready dict; :func:`render_markdown` a page.

**Licensors that asked not to be named** (``Party.disclose`` false), and parties with no
record in the catalog (no consent on record), are never named: not their name, party id or
agreement ids, nor the title or ISRC of any recording they are on (as owner, publisher,
artist or writer). They appear as "undisclosed licensor 1", "2" ..., numbered by items,
hours, then a hash of manifest root and party id (an order that reveals nothing of the id).
Any catalog text shown (names, agreement ids, sources, genres, titles, filter values) that
contains one of those secrets (case-insensitively; under four characters, as a whole word)
is withheld: a disclosed text may be withheld for safety, a secret never leaks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from accord.datasets.disclosure import WITHHELD, Undisclosed
from accord.datasets.manifest import Manifest, ManifestItem, exclusion_summary
from accord.registry.entities import Agreement, Catalog
from accord.timeutil import iso

FORMAT = "accord-training-summary/1"
MAX_EXAMPLES = 5
SOURCE_FIELDS = ("source_id", "title", "origin", "terms", "public_domain")
_MS_PER_HOUR = Decimal(3_600_000)


def hours(duration_ms: int) -> float:
    """Milliseconds as hours, two decimals, half up (from integers: no drift when summed)."""
    return float((Decimal(duration_ms) / _MS_PER_HOUR).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _amount(items: int, duration_ms: int) -> dict[str, Any]:
    return {"items": items, "duration_ms": duration_ms, "hours": hours(duration_ms)}


@dataclass
class _Licensor:
    """One licensor's part of the manifest, gathered item by item."""

    party_id: str
    sides: set[str] = field(default_factory=set)
    isrcs: dict[str, int] = field(default_factory=dict)  # ISRC → duration_ms
    agreements: set[str] = field(default_factory=set)


def _gather(manifest: Manifest, catalog: Catalog) -> dict[str, _Licensor]:
    licensors: dict[str, _Licensor] = {}
    for item in manifest.items:
        for side, owners in (("master", item.master_owners), ("publishing", item.publishers)):
            for pid in owners:
                lic = licensors.setdefault(pid, _Licensor(pid))
                lic.sides.add(side)
                lic.isrcs[item.isrc] = item.duration_ms
        for aid in item.agreements:
            agreement = catalog.agreements.get(aid)
            if agreement is not None and agreement.licensor in licensors:
                licensors[agreement.licensor].agreements.add(aid)
    return licensors


def _window(agreements: Iterable[Agreement]) -> tuple[str | None, str | None]:
    """Earliest start and latest end (``None``: open-ended, or no agreement at all)."""
    chosen = list(agreements)
    if not chosen:
        return None, None
    ends = [a.end for a in chosen if a.end is not None]
    return iso(min(a.start for a in chosen)), iso(max(ends)) if len(ends) == len(chosen) else None


def _basis(agreements: list[Agreement]) -> dict[str, Any]:
    start, end = _window(agreements)
    return {
        "agreement_count": len(agreements),
        "uses": sorted({u.value for a in agreements for u in a.uses}),
        "territories": sorted({a.territory.describe() for a in agreements}),
        "start": start,
        "end": end,
    }


def _licensor_entries(
    manifest: Manifest, catalog: Catalog, licensors: dict[str, _Licensor], hidden: set[str], secrets: Undisclosed
) -> list[dict[str, Any]]:
    def salted(pid: str) -> str:  # orders ties without revealing (or sorting by) the id itself
        return hashlib.sha256(f"{manifest.root}\0{pid}".encode()).hexdigest()

    def base(lic: _Licensor, label: str, disclosed: bool) -> dict[str, Any]:
        party = catalog.parties.get(lic.party_id)
        agreements = sorted((catalog.agreements[a] for a in lic.agreements), key=lambda a: a.agreement_id)
        return {
            "licensor": label,
            "party_id": secrets.clean(lic.party_id) if disclosed else None,
            "disclosed": disclosed,
            "kind": party.kind.value if party else "unknown",
            "sides": sorted(lic.sides),
            **_amount(len(lic.isrcs), sum(lic.isrcs.values())),
            "basis": _basis(agreements),
            "agreements": [_agreement(a, secrets) for a in agreements] if disclosed else [],
            "examples": _examples(lic, catalog, secrets) if disclosed else [],
        }

    named = [lic for pid, lic in licensors.items() if pid not in hidden]
    named.sort(key=lambda lic: (catalog.parties[lic.party_id].name.casefold(), lic.party_id))
    unnamed = [lic for pid, lic in licensors.items() if pid in hidden]
    unnamed.sort(key=lambda lic: (-len(lic.isrcs), -sum(lic.isrcs.values()), salted(lic.party_id)))
    entries = [base(lic, secrets.clean(catalog.parties[lic.party_id].name), True) for lic in named]
    entries += [base(lic, f"undisclosed licensor {n}", False) for n, lic in enumerate(unnamed, start=1)]
    return entries


def _agreement(a: Agreement, secrets: Undisclosed) -> dict[str, Any]:
    return {
        "agreement_id": secrets.clean(a.agreement_id),
        "side": a.side.value,
        "uses": sorted(u.value for u in a.uses),
        "territory": a.territory.describe(),
        "start": iso(a.start),
        "end": iso(a.end),
    }


def _examples(lic: _Licensor, catalog: Catalog, secrets: Undisclosed) -> list[str]:
    """Up to five titles, sorted, of this licensor's recordings that no undisclosed party is on."""
    titles = {
        catalog.recordings[isrc].title
        for isrc in lic.isrcs
        if isrc in catalog.recordings and isrc not in secrets.recordings
    }
    return sorted(t for t in titles if t and not secrets.leaks(t))[:MAX_EXAMPLES]


def _grouped(
    manifest: Manifest, key: Callable[[ManifestItem], tuple[Any, ...]], names: tuple[str, ...]
) -> list[dict[str, Any]]:
    """One row per group (sorted by its key), with its item count and hours."""
    rows: dict[tuple[Any, ...], list[int]] = {}
    for item in manifest.items:
        rows.setdefault(key(item), []).append(item.duration_ms)
    return [{**dict(zip(names, k, strict=True)), **_amount(len(rows[k]), sum(rows[k]))} for k in sorted(rows)]


def _source_of(item: ManifestItem, catalog: Catalog, secrets: Undisclosed) -> tuple[Any, ...]:
    rec = catalog.recordings.get(item.isrc)
    src = catalog.sources.get(rec.source) if rec else None
    if src is None:
        return ("", "(not recorded)", "", "", False)
    return (*(secrets.clean(t) for t in (src.source_id, src.title, src.origin, src.terms)), src.public_domain)


def _filters(manifest: Manifest, catalog: Catalog, hidden: set[str], secrets: Undisclosed) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, values in manifest.header.filters:
        if key == "isrc":  # the summary names no recording: say how many were listed
            out[key] = [f"{len(values)} listed recordings"]
        elif key == "licensor":
            out[key] = sorted(
                {WITHHELD if v in hidden or v not in catalog.parties else secrets.clean(v) for v in values}
            )
        else:
            out[key] = sorted({secrets.clean(v) for v in values})
    return out


def summarize(manifest: Manifest, catalog: Catalog) -> dict[str, Any]:
    """The public summary of a manifest's training content (JSON-ready, deterministic).

    ``catalog`` is the registry the manifest was built from (it gives names, agreements,
    titles and sources). Hours count each item in full for each of its licensors.
    """
    licensors = _gather(manifest, catalog)
    undisclosed = {p.party_id for p in catalog.parties.values() if not p.disclose}
    hidden = undisclosed | {pid for pid in licensors if pid not in catalog.parties}
    secrets = Undisclosed(catalog, hidden)
    relied = {aid for item in manifest.items for aid in item.agreements}
    known = [catalog.agreements[a] for a in sorted(relied) if a in catalog.agreements]
    start, end = _window(known)
    duration = sum(i.duration_ms for i in manifest.items)
    excluded = exclusion_summary(manifest)
    not_named = sum(1 for pid in licensors if pid in hidden)
    return {
        "format": FORMAT,
        "manifest_root": manifest.root,
        "use": manifest.header.use.value,
        "as_of": iso(manifest.header.as_of),
        "territory": manifest.header.territory,
        "filters": _filters(manifest, catalog, hidden, secrets),
        "totals": {
            **_amount(len(manifest.items), duration),
            "bytes": sum(i.size for i in manifest.items),
            "excluded": len(manifest.excluded),
            "excluded_by_reason": {code: excluded[code] for code in sorted(excluded)},
            "licensors": len(licensors),
            "named_licensors": len(licensors) - not_named,
            "undisclosed_licensors": not_named,
            "agreements": len(relied),
        },
        "time_span": {
            "as_of": iso(manifest.header.as_of),
            "earliest_start": start,
            "latest_end": end,
            "open_ended": bool(known) and end is None,
        },
        "licensors": _licensor_entries(manifest, catalog, licensors, hidden, secrets),
        "genres": _grouped(manifest, lambda i: (secrets.clean(i.genre or "(none)"),), ("genre",)),
        "sources": _grouped(manifest, lambda i: _source_of(i, catalog, secrets), SOURCE_FIELDS),
    }


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _hours(row: dict[str, Any]) -> str:
    return f"{row['hours']:.2f}"


def _section(title: str, head: tuple[str, ...], rows: Iterable[Iterable[object]]) -> list[str]:
    lines = [title, "", "| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    return [*lines, *("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows), ""]


def _basis_rows(licensor: dict[str, Any]) -> list[tuple[object, ...]]:
    """A named licensor's agreements one by one; an undisclosed one's as a count."""
    rows: list[tuple[object, ...]] = [
        (a["agreement_id"], ", ".join(a["uses"]), a["territory"], a["start"], a["end"]) for a in licensor["agreements"]
    ]
    if not licensor["disclosed"]:
        b = licensor["basis"]
        count = f"{b['agreement_count']} agreement{'' if b['agreement_count'] == 1 else 's'}"
        rows.append((count, ", ".join(b["uses"]), "; ".join(b["territories"]), b["start"], b["end"]))
    return [(licensor["licensor"], *row[:4], row[4] or "open-ended") for row in rows]


def render_markdown(summary: dict[str, Any]) -> str:
    """A human-readable page (Markdown) of a :func:`summarize` result."""
    t, span, lics = summary["totals"], summary["time_span"], summary["licensors"]
    filters = "; ".join(f"{k} = {', '.join(v)}" for k, v in sorted(summary["filters"].items())) or "none"
    out = [
        "# Training content summary",
        "",
        f"Manifest `{summary['manifest_root']}` · use **{summary['use']}** · territory **{summary['territory']}**"
        f" · as of {summary['as_of']} · filters: {_cell(filters)}",
        "",
        "## What this is",
        "",
        "A public summary of the music in one training set: how much there is, who licensed it and under "
        "which agreements (the licensing basis), its genres and sources, and the period the licences cover. "
        "Every recording in it was licensed for this use by all of its master owners and publishers at the "
        "instant above. It names no individual recording except a few example titles from licensors that "
        "agreed to be named. Hours count each recording in full for each of its licensors.",
        "",
    ]
    if t["undisclosed_licensors"]:
        out += [
            f"{t['undisclosed_licensors']} of {t['licensors']} licensors asked not to be named. They appear as "
            '"undisclosed licensor 1", "undisclosed licensor 2" and so on; their agreements are counted, not named.',
            "",
        ]
    until = span["latest_end"] or ("open-ended" if span["open_ended"] else "")
    totals = [
        ("recordings", t["items"]),
        ("hours of music", _hours(t)),
        ("bytes", t["bytes"]),
        ("recordings left out", t["excluded"]),
        ("licensors", f"{t['licensors']} ({t['undisclosed_licensors']} not named)"),
        ("agreements relied on", t["agreements"]),
        ("licences in force from", span["earliest_start"] or ""),
        ("licences in force until", until),
    ]
    out += _section("## Totals", ("", ""), totals)
    if t["excluded_by_reason"]:
        out += _section("### Left out, by reason", ("reason", "recordings"), t["excluded_by_reason"].items())
    rows = [
        (x["licensor"], x["kind"], ", ".join(x["sides"]), x["items"], _hours(x), x["basis"]["agreement_count"])
        for x in lics
    ]
    out += _section("## Licensors", ("licensor", "kind", "sides", "recordings", "hours", "agreements"), rows)
    basis = [row for x in lics for row in _basis_rows(x)]
    out += _section("## Licensing basis", ("licensor", "agreement", "uses", "territory", "from", "until"), basis)
    genres = [(g["genre"], g["items"], _hours(g)) for g in summary["genres"]]
    out += _section("## Genres", ("genre", "recordings", "hours"), genres)
    sources = [
        (s["title"], s["terms"], "yes" if s["public_domain"] else "no", s["items"], _hours(s))
        for s in summary["sources"]
    ]
    out += _section("## Sources", ("source", "terms", "public domain", "recordings", "hours"), sources)
    examples = [(x["licensor"], "; ".join(x["examples"])) for x in lics if x["examples"]]
    if examples:
        out += _section("## Examples", ("licensor", f"example titles (at most {MAX_EXAMPLES})"), examples)
    return "\n".join(out).rstrip() + "\n"
