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
