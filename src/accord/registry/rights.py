"""Validators for rights records: agreements and opt-outs.

The same readers serve a delivery's ``agreements`` / ``optouts`` sections and the CLI's
``accord agreement grant`` / ``accord optout add`` (which build the same JSON shape), so
the rules live in one place.
"""

from __future__ import annotations

from collections.abc import Mapping

from accord.errors import InvalidIdentifier, Problem
from accord.identifiers import validate_isrc
from accord.licensing import opt_out_standing
from accord.registry.delivery import Item
from accord.registry.entities import (
    GRANTABLE_USES,
    PPM_WHOLE,
    Agreement,
    Catalog,
    CommercialTerms,
    Coverage,
    GuaranteeSettlement,
    GuaranteeTerm,
    ModelScope,
    OptOut,
    OptOutScope,
    Recording,
    Side,
    Territory,
    TrainingPoolMethod,
    Use,
    Work,
)
from accord.registry.fields import FieldReader, is_country
from accord.registry.standing import holders

AGREEMENT_FIELDS = (
    "id",
    "licensor",
    "side",
    "uses",
    "territory",
    "start",
    "end",
    "coverage",
    "terms",
    "model_scope",
)
TERMS_FIELDS = (
    "pool_share",
    "master_split",
    "training_pool_method",
    "minimum_guarantee",
    "advance",
    "guarantee_term",
    "guarantee_settlement",
)
OPTOUT_FIELDS = ("id", "party", "scope", "target", "uses", "effective")
USE_NAMES = ", ".join(sorted(u.value for u in GRANTABLE_USES))


def _uses(r: FieldReader, *, allow_all: bool) -> frozenset[Use] | None:
    raw = r.raw("uses")
    expected = f"a non-empty list of {USE_NAMES}" + (' or ["all"]' if allow_all else "")
    if not isinstance(raw, list) or not raw or not all(isinstance(u, str) for u in raw):
        r.fail("uses", raw, expected, "missing_field" if not raw else "wrong_type")
        return None
    names = [u.strip().lower() for u in raw]
    if allow_all and names == ["all"]:
        return GRANTABLE_USES
    out = set()
    for i, name in enumerate(names):
        if name == Use.VOICE.value:
            r.fail(
                f"uses[{i}]",
                name,
                f"one of {USE_NAMES} (voice is reserved while the model is symbolic)",
                "invalid_value",
            )
        elif name not in {u.value for u in GRANTABLE_USES}:
            r.fail(f"uses[{i}]", name, expected, "invalid_value")
        else:
            out.add(Use(name))
    return frozenset(out) if r.ok else None


def _territory(r: FieldReader) -> Territory | None:
    raw = r.raw("territory")
    shape = '{"include": ["US", ...]} or {"worldwide": true, "exclude": [...]}'
    if not isinstance(raw, dict) or set(raw) - {"include", "worldwide", "exclude"}:
        r.fail("territory", raw, shape, "missing_field" if raw is None else "wrong_type")
        return None
    worldwide = raw.get("worldwide", False)
    include, exclude = raw.get("include", []), raw.get("exclude", [])
    if not isinstance(worldwide, bool) or not isinstance(include, list) or not isinstance(exclude, list):
        r.fail("territory", raw, shape, "wrong_type")
        return None
    if worldwide and include:
        r.fail(
            "territory.include",
            include,
            "no include list when worldwide is true (use exclude)",
            "invalid_value",
        )
    if not worldwide and exclude:
        r.fail(
            "territory.exclude",
            exclude,
            "exclude only together with worldwide: true",
            "invalid_value",
        )
    if not worldwide and not include:
        r.fail(
            "territory.include",
            include,
            "at least one territory, or worldwide: true",
            "missing_field",
        )
    for key, codes in (("include", include), ("exclude", exclude)):
        for i, code in enumerate(codes):
            if not isinstance(code, str) or not is_country(code):
                r.fail(
                    f"territory.{key}[{i}]",
                    code,
                    "an ISO 3166-1 alpha-2 country code",
                    "invalid_value",
                )
    if not r.ok:
        return None
    return Territory(
        worldwide=worldwide,
        include=frozenset(c.upper() for c in include),
        exclude=frozenset(c.upper() for c in exclude),
    )


def _coverage(r: FieldReader, side: Side | None, catalog: Catalog, viewer: str | None) -> Coverage | None:
    raw = r.raw("coverage")
    shape = '{"catalog": true} or {"recordings": [ISRC, ...]} / {"works": [work id, ...]}'
    if not isinstance(raw, dict) or len(raw) != 1 or set(raw) - {"catalog", "recordings", "works"}:
        r.fail("coverage", raw, shape, "missing_field" if raw is None else "wrong_type")
        return None
    if "catalog" in raw:
        if raw["catalog"] is not True:
            r.fail(
                "coverage.catalog",
                raw["catalog"],
                "true (or list the items instead)",
                "invalid_value",
            )
            return None
        return Coverage(catalog=True)
    key = next(iter(raw))
    wanted = "recordings" if side == Side.MASTER else "works"
    if side is not None and key != wanted:
        r.fail(
            f"coverage.{key}",
            raw[key],
            f"a list of {wanted} on the {side.value} side",
            "invalid_value",
        )
        return None
    items = raw[key]
    if not isinstance(items, list) or not items or not all(isinstance(x, str) for x in items):
        r.fail(f"coverage.{key}", items, f"a non-empty list of {key}", "wrong_type")
        return None
    known: Mapping[str, Recording | Work] = catalog.recordings if key == "recordings" else catalog.works
    if viewer is not None:
        # A party sees only its own items: another's answers exactly as a missing one.
        known = {k: v for k, v in known.items() if viewer in holders(v.shares)}
    listed = []
    for i, x in enumerate(items):
        ident = x.strip()
        if key == "recordings":
            try:
                ident = validate_isrc(ident)
            except InvalidIdentifier as exc:
                r.fail(f"coverage.recordings[{i}]", x, f"a valid ISRC: {exc}", "invalid_identifier")
                continue
        if ident not in known:
            r.fail(
                f"coverage.{key}[{i}]",
                x,
                f"a {key[:-1]} in the registry or this delivery",
                "unknown_reference",
            )
            continue
        listed.append(ident)
    if not r.ok:
        return None
    return Coverage(recordings=frozenset(listed)) if key == "recordings" else Coverage(works=frozenset(listed))


def _terms(r: FieldReader) -> CommercialTerms | None:
    raw = r.raw("terms")
    if not isinstance(raw, dict):
        r.fail(
            "terms",
            raw,
            "an object with pool_share, master_split, training_pool_method ...",
            "missing_field" if raw is None else "wrong_type",
        )
        return None
    sub = FieldReader(Item(r.loc.child("terms"), raw), r.problems, allowed=TERMS_FIELDS)
    pool = sub.percent("pool_share", raw.get("pool_share")) if "pool_share" in raw else None
    if pool is None and "pool_share" not in raw:
        sub.fail(
            "pool_share",
            None,
            'the share of net revenue paid into the rights pool, e.g. "30"',
            "missing_field",
        )
    elif pool == 0:
        sub.fail("pool_share", raw.get("pool_share"), "a share above 0%", "invalid_value")
    split = sub.percent("master_split", raw.get("master_split", "50"))
    method = sub.choice(
        "training_pool_method",
        TrainingPoolMethod,
        required=False,
        default=TrainingPoolMethod.EQUAL_PER_WORK,
    )
    mg, adv = sub.money("minimum_guarantee"), sub.money("advance")
    term = sub.choice("guarantee_term", GuaranteeTerm, required=False, default=GuaranteeTerm.MONTHLY)
    settle = sub.choice(
        "guarantee_settlement", GuaranteeSettlement, required=False, default=GuaranteeSettlement.TERM_END
    )
    if not sub.ok:
        r.ok = False
        return None
    if pool is None or split is None or method is None or term is None or settle is None or split > PPM_WHOLE:
        return None
    return CommercialTerms(pool, split, method, mg, adv, term, settle)


def read_agreement(
    item: Item, problems: list[Problem], catalog: Catalog, *, viewer: str | None = None
) -> Agreement | None:
    """An agreement; ``catalog`` (registry plus delivery) resolves licensor and listed items.

    ``viewer``: the party writing it (``None``: the operator). A listed item the viewer holds
    no share in is reported exactly like a missing one, so that its existence does not leak.
    """
    r = FieldReader(item, problems, allowed=AGREEMENT_FIELDS)
    aid, licensor = r.ident("id"), r.ident("licensor")
    if licensor is not None and licensor not in catalog.parties and (viewer is None or licensor == viewer):
        # another party as licensor is refused by standing, whether it exists or not (no oracle)
        r.fail("licensor", licensor, "a party in the registry or this delivery", "unknown_reference")
    side = r.choice("side", Side)
    uses = _uses(r, allow_all=False)
    territory = _territory(r)
    start, end = r.instant("start"), r.instant("end", required=False)
    if start is not None and end is not None and end <= start:
        r.fail("end", r.raw("end"), f"an end after the start ({r.raw('start')})", "invalid_value")
    coverage = _coverage(r, side, catalog, viewer)
    terms = _terms(r)
    if terms is not None and terms.minimum_guarantee and terms.guarantee_term == GuaranteeTerm.AGREEMENT and not end:
        # a guarantee over the agreement's term needs a term that ends
        expected = "an agreement with an end for a per-agreement term"
        r.fail("terms.guarantee_term", "agreement", expected, "invalid_value")
    scope = r.choice("model_scope", ModelScope, required=False, default=ModelScope.ANY)
    if not r.ok or None in (aid, licensor, side, uses, territory, start, coverage, terms, scope):
        return None
    return Agreement(aid, licensor, side, uses, territory, start, end, coverage, terms, scope)  # type: ignore[arg-type]


def read_optout(item: Item, problems: list[Problem], catalog: Catalog, *, viewer: str | None = None) -> OptOut | None:
    """An opt-out; the party must have standing on what it names (owner, artist, writer, publisher).

    ``viewer``: the party writing it (``None``: the operator). A target the viewer has no
    standing on is reported exactly like a missing one, so that its existence does not leak.
    """
    r = FieldReader(item, problems, allowed=OPTOUT_FIELDS)
    oid, party = r.ident("id"), r.ident("party")
    if party is not None and party not in catalog.parties and (viewer is None or party == viewer):
        # another party's name is refused by standing, whether it exists or not (no oracle)
        r.fail("party", party, "a party in the registry or this delivery", "unknown_reference")
    scope = r.choice("scope", OptOutScope)
    target = r.text("target", required=scope in (OptOutScope.RECORDING, OptOutScope.WORK)) or ""
    if scope == OptOutScope.CATALOG and target:
        r.fail("target", target, "no target for a catalog opt-out", "invalid_value")
    if scope == OptOutScope.RECORDING and target:
        try:
            target = validate_isrc(target)
        except InvalidIdentifier as exc:
            r.fail("target", target, f"a valid ISRC: {exc}", "invalid_identifier")
    known: Mapping[str, object] = catalog.recordings if scope == OptOutScope.RECORDING else catalog.works
    hidden = (
        viewer is not None
        and scope in (OptOutScope.RECORDING, OptOutScope.WORK)
        and target in known
        and not opt_out_standing(catalog, viewer, scope, target)
    )
    if r.ok and scope in (OptOutScope.RECORDING, OptOutScope.WORK) and (target not in known or hidden):
        r.fail(
            "target",
            target,
            f"a {scope.value} in the registry or this delivery",
            "unknown_reference",
        )
    uses = _uses(r, allow_all=True)
    effective = r.instant("effective")
    own = viewer is None or party == viewer  # another's name: refused by standing, existing or not
    if r.ok and own and party is not None and scope is not None and not opt_out_standing(catalog, party, scope, target):
        r.fail(
            "party",
            party,
            f"a party with standing on this {scope.value} (a master owner, artist, writer or publisher of it)",
            "no_standing",
        )
    if not r.ok or None in (oid, party, scope, uses, effective):
        return None
    return OptOut(oid, party, scope, target, uses, effective)  # type: ignore[arg-type]
