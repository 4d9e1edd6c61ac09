"""One typed Settings object, read from ``ACCORD_*`` environment variables.

The defaults work with zero set-up: an SQLite file and a media store under
``ACCORD_HOME`` (``~/.accord`` unless set).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pydantic
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from accord.errors import ValidationError

DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgres", "postgresql+psycopg")
"""URL schemes the registry can be opened with (the drivers Accord ships with)."""


def check_ray_address(value: str) -> str:
    """``value`` stripped, when it is a Ray address Accord connects to (``auto``, ``ray://HOST:PORT``,
    or empty for a Ray on this machine); otherwise :class:`ValueError` saying what is expected."""
    address = value.strip()
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if address in ("", "auto") or (address.startswith("ray://") and host and port.isdigit()):
        return address
    msg = f"{address!r} is not a Ray address; expected auto, ray://HOST:PORT, or empty (a Ray on this machine)"
    raise ValueError(msg)


class Settings(BaseSettings):
    """Accord's configuration.

    Attributes:
        home: where Accord keeps its files (database, media store, keys, caches).
        database_url: SQLAlchemy URL of the registry; empty means SQLite under ``home``.
        workers: processes for heavy batch work (0 = one per core).
        executor: the backend batch work runs on (``local``, ``serial``, ``ray``).
        ray_address: the Ray cluster for ``executor=ray`` (empty: a Ray started on this machine).
        usage_url: the usage log's folder (a path or ``file://`` URL); empty: ``home/usage``.
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
    executor: str = Field(
        default="local",
        description=(
            "Where batch work runs: local (a process pool on this machine), serial (in the calling process) "
            "or ray (a Ray cluster, docs/scale.md)."
        ),
    )
    ray_address: str = Field(
        default="",
        description=(
            "With ACCORD_EXECUTOR=ray: the cluster, auto (the one this node joined) or ray://HOST:PORT; "
            "empty starts a Ray on this machine with ACCORD_WORKERS CPUs (0: one per core)."
        ),
    )
    usage_url: str = Field(
        default="",
        description=(
            "Where the usage log (day-partitioned Parquet) lives: a folder or file:// URL every node of a cluster "
            "reads (a shared or mounted file system); empty: ACCORD_HOME/usage."
        ),
    )
    api_max_body_mb: int = Field(
        default=64,
        ge=1,
        description="The API refuses a request body larger than this many MiB (HTTP 413), before reading it.",
    )

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
            "Replication guard: significance (-log10 E, E the chance matches this good expected in the whole "
            "catalog) at which an output is blocked; 0: the calibrated policy (accord guard calibrate), else 3."
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
        description=(
            "Replication guard calibration: added above that percentile (symbolic: decades of E; audio: landmarks)."
        ),
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
    torch_threads: int = Field(
        default=1,
        ge=0,
        description=(
            "Threads PyTorch uses in each process that trains, samples or attributes (`accord worker`, train, "
            "generate, model evaluate, attribute, attribution, demo): 1 runs several processes rather than one wide "
            "one on shared cores; 0 leaves PyTorch's default (one per core)."
        ),
    )
    job_lease_s: float = Field(
        default=30.0,
        gt=0,
        description="Jobs: a running job whose worker has not beaten its heartbeat for this long is re-queued.",
    )
    job_heartbeat_s: float = Field(
        default=5.0,
        gt=0,
        description="Jobs: how often a worker beats the heartbeat of the job it runs (well under the lease).",
    )
    job_max_attempts: int = Field(
        default=3,
        ge=1,
        description="Jobs: attempts before a job whose worker keeps crashing (or erring) is failed with the reason.",
    )
    job_poll_s: float = Field(
        default=1.0, gt=0, description="Jobs: how long an idle worker waits before looking for queued work again."
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        url = value.strip()
        scheme = url.partition("://")[0].lower() if "://" in url else ""
        if url and scheme not in DATABASE_SCHEMES:
            msg = (
                f"scheme {scheme or url!r} is not supported; expected sqlite:///PATH or "
                "postgresql://USER@HOST/DB (empty: SQLite under ACCORD_HOME)"
            )
            raise ValueError(msg)
        if url:
            # SQLAlchemy only when a URL is set: reading the settings alone (the default, SQLite) does not import it
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                make_url(url)
            except (ArgumentError, ValueError) as exc:  # a port that is not a number, a garbled URL
                why = str(exc).split(" from string ")[0]  # never echo the URL: it may hold a password
                msg = f"not a valid database URL ({why}); expected sqlite:///PATH or postgresql://USER@HOST/DB"
                raise ValueError(msg) from None
        return value

    @field_validator("executor")
    @classmethod
    def _a_known_executor(cls, value: str) -> str:
        from accord.execution import EXECUTORS  # light: the backends import their engines when used

        name = value.strip()
        if name not in EXECUTORS:
            msg = f"{name!r} is not a known executor; expected one of {', '.join(sorted(EXECUTORS))}"
            raise ValueError(msg)
        return name

    @field_validator("ray_address")
    @classmethod
    def _a_ray_address(cls, value: str) -> str:
        return check_ray_address(value)

    @field_validator("usage_url")
    @classmethod
    def _usage_on_a_file_system(cls, value: str) -> str:
        url = value.strip()
        scheme = url.partition("://")[0].lower() if "://" in url else ""
        if scheme and scheme != "file":
            msg = (
                f"scheme {scheme!r} is not supported; expected a folder or file:///PATH that every node reads "
                "(an object store mounted as a file system, e.g. with s3fs or gcsfuse)"
            )
            raise ValueError(msg)
        return value

    @field_validator("job_heartbeat_s")
    @classmethod
    def _beats_within_the_lease(cls, value: float, info: pydantic.ValidationInfo) -> float:
        lease = info.data.get("job_lease_s")
        if lease is not None and value >= lease:
            msg = f"must be shorter than ACCORD_JOB_LEASE_S ({lease:g} s), or every running job would be taken away"
            raise ValueError(msg)
        return value

    @field_validator("plans")
    @classmethod
    def _plans_shape(cls, value: str) -> str:
        try:
            raw = json.loads(value)
        except json.JSONDecodeError as exc:
            msg = f"not valid JSON ({exc.msg} at char {exc.pos})"
            raise ValueError(msg) from None
        ok = isinstance(raw, dict) and raw and all(isinstance(v, dict) for v in raw.values())
        bad = [name for name, spec in (raw.items() if ok else ()) if not _count(spec.get("downloads_per_month"))]
        if not ok or bad:
            msg = 'expected a JSON object like {"free": {"downloads_per_month": 0}}' + (
                f"; plan {bad[0]!r} needs downloads_per_month, an integer >= 0" if bad else ""
            )
            raise ValueError(msg)
        return value

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
    def usage_path(self) -> Path:
        """The usage log's folder: ``usage_url`` (a ``file://`` URL read through pyarrow's file systems), else
        ``home/usage``."""
        url = self.usage_url.strip()
        if not url:
            return self.home / "usage"
        if url.lower().startswith("file://"):
            from pyarrow.fs import FileSystem  # only here: reading the settings alone does not import pyarrow

            _, path = FileSystem.from_uri(url)
            return Path(path)
        return Path(url).expanduser()

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


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def get_settings() -> Settings:
    """Read the settings from the environment now (never cached: tests change it).

    A bad value raises :class:`~accord.errors.ValidationError` naming its ``ACCORD_*`` variable.
    """
    try:
        return Settings()
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first.get("loc") else "?"
        var = f"ACCORD_{name.upper()}"
        value = os.environ.get(var, first.get("input"))
        if isinstance(value, str):
            value = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", value)  # a URL's password is never shown
        why = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        msg = f"{var}={value!r}: {why}"
        raise ValidationError(msg, field=var, value=value) from None


def ensure_home(settings: Settings) -> Path:
    """Create ``ACCORD_HOME`` if needed and check Accord can write there; a clear error if not."""
    home = settings.home
    why = ""
    if home.exists() and not home.is_dir():
        why = "exists and is not a directory"
    else:
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = f"cannot be created ({exc.strerror or exc})"
        else:
            if not os.access(home, os.W_OK | os.X_OK):
                why = "is not writable"
    if why:
        msg = f"ACCORD_HOME={str(home)!r}: {why}; expected a writable folder for Accord's files"
        raise ValidationError(msg, field="ACCORD_HOME", value=str(home))
    return home
