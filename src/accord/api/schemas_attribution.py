"""Request and response bodies of the guard and attribution routes (the attribution contract, typed)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from accord.api.schemas import Strict


class GuardEvidenceOut(BaseModel):
    """One catalog recording close to the checked piece (symbolic: bars and lines; audio: seconds and source)."""

    model_config = ConfigDict(extra="allow")
    isrc: str | None = None
    title: str | None = None
    commitment: str | None = Field(
        default=None, description="In place of isrc and title: a recording of a party that asked not to be named."
    )
    check: Literal["symbolic", "audio"]
    score: float
    threshold: float
    over_threshold: bool


class GuardCheckOut(BaseModel):
    file: str = Field(description="The uploaded file's name.")
    kind: Literal["midi", "audio"]
    sha256: str = Field(description="SHA-256 of the uploaded bytes (the audit log's object id).")
    status: Literal["clear", "blocked"]
    threshold: float = Field(description="Symbolic score at which a piece is blocked.")
    audio_threshold: float = Field(description="Audio landmark votes at which a piece is blocked.")
    policy_version: str
    checks: list[str]
    catalog: dict[str, int]
    closest: list[GuardEvidenceOut]
    notes: list[str]


class Committed(BaseModel):
    """An entry's weight, and where it names no hidden party by id, its commitment (public form, see
    docs/credentials.md); a hidden party's own entry shows its id, commitment and blind (its opening)."""

    weight_ppm: int
    commitment: str | None = Field(default=None, description="In place of the id: a party asked not to be named.")
    blind: str | None = Field(default=None, description="The caller's own entry: opens its commitment.")


class ItemWeightOut(Committed):
    isrc: str | None = None


class WorkWeightOut(Committed):
    work_id: str | None = None


class HolderWeightOut(Committed):
    party_id: str | None = None


class HoldersOut(BaseModel):
    master: list[HolderWeightOut]
    publishing: list[HolderWeightOut]


class WorkRefOut(BaseModel):
    work_id: str
    title: str


class TopItemOut(BaseModel):
    isrc: str
    title: str
    weight_ppm: int
    works: list[WorkRefOut]


class AttributionContractOut(BaseModel):
    """The attribution contract, exactly as an output's content credential carries it."""

    status: Literal["computed"]
    method: str
    method_version: str
    reliable: bool
    unattributed_ppm: int = Field(ge=0, le=1_000_000)
    items: list[ItemWeightOut]
    works: list[WorkWeightOut]
    holders: HoldersOut
    top: list[TopItemOut]


class AttributionOut(BaseModel):
    file: str
    model_id: str
    attribution: AttributionContractOut
    details: dict[str, Any] | None = Field(
        default=None, description="Operator only: how the weights were reached (scores, thresholds, timings)."
    )


class AttributionIndexIn(Strict):
    methods: list[str] | None = Field(
        default=None, max_length=8, description="Methods to index (default: every registered method)."
    )
