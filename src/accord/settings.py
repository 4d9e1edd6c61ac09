"""One typed Settings object, read from ``ACCORD_*`` environment variables.

The defaults work with zero set-up: an SQLite file and a media store under
``ACCORD_HOME`` (``~/.accord`` unless set).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Accord's configuration.

    Attributes:
        home: where Accord keeps its files (database, media store, keys, caches).
        database_url: SQLAlchemy URL of the registry; empty means SQLite under ``home``.
        workers: processes for heavy batch work (0 = one per core).
    """

    model_config = SettingsConfigDict(env_prefix="ACCORD_", extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path.home() / ".accord",
        description="Folder for Accord's files: the SQLite registry, media store, keys, caches.",
    )
    database_url: str = Field(
        default="",
        description=(
            "SQLAlchemy URL of the registry, e.g. postgresql://user@host/db. "
            "Empty: an SQLite file at ACCORD_HOME/accord.db."
        ),
    )
    workers: int = Field(default=0, ge=0, description="Worker processes for batch work; 0 means one per CPU core.")

    plans: str = Field(
        default='{"free": {"downloads_per_month": 0}, "pro": {"downloads_per_month": 30}}',
        description="Creator plans as JSON: downloads per calendar month per plan; 0 means stream only.",
    )
    soundfont: str = Field(
        default="",
        description="SoundFont (.sf2) for rendering audio; empty: the first General MIDI soundfont found.",
    )
    attribution_method: str = Field(
        default="trak",
        description="Attribution method for released outputs: trak, tracin, gradsim or embedding.",
    )
    attribution_dims: int = Field(
        default=2048, ge=16, description="Dimensions gradients are projected to for attribution (TRAK, TracIn)."
    )
    attribution_members: int = Field(
        default=3, ge=1, description="Checkpoints (or dropout members) attribution gradients are averaged over."
    )
    guard_symbolic_threshold: float = Field(
        default=0.0,
        ge=0.0,
        description=(
            "Replication guard: symbolic score (bars of one catalog work's melody or bass shared, less edits) "
            "at which an output is blocked; 0: the calibrated policy (accord guard calibrate), else the default 3."
        ),
    )
    guard_audio_threshold: float = Field(
        default=0.0,
        ge=0.0,
        description="Replication guard: agreeing audio landmarks at which an output is blocked; 0: calibrated/default.",
    )
    guard_percentile: float = Field(
        default=99.5,
        gt=0.0,
        le=100.0,
        description="Replication guard calibration: the percentile of the catalog's own borrowing to stay above.",
    )
    guard_margin: float = Field(
        default=0.5,
        ge=0.0,
        description="Replication guard calibration: added above that percentile (symbolic: bars; audio: landmarks).",
    )
    guard_max_attempts: int = Field(
        default=4,
        ge=1,
        description="Replication guard: seeds tried per output before generation refuses (first: the requested one).",
    )
    guard_candidates: int = Field(
        default=8, ge=1, description="Replication guard: catalog lines re-scored by alignment per line checked."
    )
    guard_audio: bool = Field(
        default=True,
        description="Replication guard: also run the audio fingerprint check (renders catalog MIDI once, cached).",
    )
    guard_transcribe: bool = Field(
        default=True,
        description=(
            "Replication guard: transcribe audio to notes (basic-pitch's model, offline) so the symbolic check "
            "covers audio-only catalog recordings and audio files checked with `accord guard check`."
        ),
    )
    royalty_policy: str = Field(
        default="",
        description=(
            'Royalty policy as JSON (or the path of a JSON file): {"default": {...}, "YYYY-MM": {...}} with '
            "training_share_ppm, training_pool_method, kind_weights, output_kinds, reserve_ppm (docs/royalties.md)."
        ),
    )
    payout_threshold: str = Field(
        default="10.00",
        description="Royalty payouts: a payable balance is paid only at or above this (major units, any currency).",
    )

    @property
    def resolved_database_url(self) -> str:
        """The database URL, SQLite under ``home`` by default, psycopg 3 for PostgreSQL."""
        url = self.database_url.strip()
        if not url:
            return f"sqlite:///{self.home / 'accord.db'}"
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def media_dir(self) -> Path:
        return self.home / "media"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def outputs_dir(self) -> Path:
        return self.home / "outputs"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"


def get_settings() -> Settings:
    """Read the settings from the environment now (never cached: tests change it)."""
    return Settings()
