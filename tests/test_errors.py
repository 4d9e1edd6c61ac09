"""One error shape: the CLI prints one line and exits 2 (1 only for a negative answer); the API
answers ``{"error": {"code", "message", "field"}}`` with a 4xx for bad input and a bare 500 for a bug.

Fuzzed inputs (usage files, MIDI, proofs, credentials) go through the same command a user runs:
never a traceback, never an exit code other than the documented 0, 1 and 2.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from accord.api.app import create_app
from accord.api.auth import create_key
from accord.cli import app
from accord.errors import Rejected, ValidationError
from accord.media.features import read_performance
from accord.registry.store import Store
from accord.royalties.usage_checks import FIELDS, read_usage_file
from accord.settings import Settings

runner = CliRunner()
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CLI_FUZZ = settings(FUZZ, max_examples=8)  # each example is a whole command (about 0.3 s)


def accord(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_template: Path) -> Path:
    """ACCORD_HOME with an empty, migrated SQLite registry (the settings errors happen before it)."""
    folder = tmp_path / "home"
    folder.mkdir()
    shutil.copy(sqlite_template, folder / "accord.db")
    monkeypatch.setenv("ACCORD_HOME", str(folder))
    monkeypatch.setenv("ACCORD_DATABASE_URL", "")
    monkeypatch.delenv("ACCORD_DEBUG", raising=False)
    return folder


# ------------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("ACCORD_DATABASE_URL", "mysql://root@db/accord", "scheme 'mysql' is not supported"),
        ("ACCORD_DATABASE_URL", "postgresql://ana:s3cret@db:port/x", "'postgresql://ana:***@db:port/x': not a valid"),
        ("ACCORD_WORKERS", "-1", "greater than or equal to 0"),
        ("ACCORD_WORKERS", "many", "valid integer"),
        ("ACCORD_PLANS", '{"free": {"downloads_per_month": -1}}', "plan 'free' needs downloads_per_month"),
        ("ACCORD_PLANS", "{not json", "not valid JSON"),
        ("ACCORD_EXECUTOR", "spark", "not a known executor; expected one of local, ray, serial"),
        ("ACCORD_RAY_ADDRESS", "10.0.0.5", "not a Ray address; expected auto, ray://HOST:PORT"),
        ("ACCORD_RAY_ADDRESS", "ray://head:port", "not a Ray address"),
    ],
)
def test_a_bad_setting_is_one_line_naming_its_variable_and_exit_2(
    home: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    code, _, err = accord("log")
    assert code == 2
    line = one_error_line(err)
    assert line.startswith(f"error: {variable}=") and says in line


def test_an_accord_home_that_is_a_file_or_under_one_is_one_line_and_exit_2(home: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for where, says in ((blocker, "is not a directory"), (blocker / "home", "cannot be created")):
        code, _, err = accord("log", env={"ACCORD_HOME": str(where)})
        assert code == 2
        assert one_error_line(err).startswith(f"error: ACCORD_HOME='{where}'") and says in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any permission bits")
def test_an_unwritable_accord_home_is_one_line_and_exit_2(home: Path) -> None:
    home.chmod(0o500)
    try:
        code, _, err = accord("log")
    finally:
        home.chmod(0o700)
    assert code == 2 and "is not writable" in one_error_line(err)


# ------------------------------------------------------------------------------- the CLI


def test_a_bug_is_one_line_saying_so_and_debug_shows_the_traceback(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> None:
        raise KeyError("no such column")

    monkeypatch.setattr(Store, "audit_log", broken)
    code, _, err = accord("log")
    assert code == 2  # never 1, which would read as a negative answer
    line = one_error_line(err)
    assert "internal error (KeyError" in line and "--debug" in line
    for args, env in ((["--debug", "log"], None), (["log"], {"ACCORD_DEBUG": "1"})):
        code, _, err = accord(*args, env=env)
        assert code == 2 and "Traceback" in err and 'raise KeyError("no such column")' in err


def test_exit_1_stays_a_negative_answer_and_usage_errors_stay_exit_2(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "u.csv"
    bad.write_bytes(b"event_id,kind\n\xff,play\n")
    code, out, err = accord("usage", "ingest", str(bad))
    assert code == 1 and "bad_encoding" in out and "rejected:" in err  # a rejected input, problems listed
    assert accord("log", "--limit", "many")[0] == 2  # Typer's own usage error
    code, _, err = accord("usage", "ingest", str(tmp_path / "missing.csv"))
    assert code == 2 and "does not exist" in one_error_line(err)


# ------------------------------------------------------------------------------- the API


@pytest.fixture
def api(home: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The API over a fresh SQLite registry (the error shape stores nothing), bodies limited to 1 MiB."""
    settings = Settings(home=home, api_max_body_mb=1)
    store = Store.open(settings)
    application = create_app(settings, store=store)

    @application.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError(f"secret detail at {settings.home}")

    _, secret = create_key(store, role="operator", party_id="ops")
    with TestClient(application, raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Bearer {secret}"}
    store.close()


def test_a_bug_answers_500_with_a_generic_body_and_the_request_id(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    r = client.get("/v1/boom", headers={**auth, "X-Request-ID": "req-42"})
    assert r.status_code == 500
    error = r.json()["error"]
    assert (error["code"], error["field"]) == ("internal", None)
    assert "req-42" in error["message"] and "secret" not in r.text and "/" not in error["message"]
    assert r.headers["x-request-id"] == "req-42"


def test_bad_usage_events_answer_422_with_every_problem(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    events = [{"event_id": "a\u0000b", "kind": "play", "colour": "red"}]
    r = client.post("/v1/usage-events", headers=auth, json={"events": events})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "rejected" and error["field"] == "colour"
    assert [p["code"] for p in error["problems"]] == ["unknown_column"]
    r = client.post("/v1/usage-events", headers=auth, json={"events": [{"event_id": "a\u0000b", "kind": "play"}]})
    assert [p["code"] for p in r.json()["error"]["problems"]] == ["nul_character"]


def test_a_body_past_the_limit_answers_413_declared_or_streamed(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    big = b'{"events": [' + b'{"event_id": "x"},' * 70_000 + b'{"event_id": "y"}]}'
    assert len(big) > 2**20
    headers = {**auth, "Content-Type": "application/json"}
    r = client.post("/v1/usage-events", headers=headers, content=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for i in range(0, len(big), 65_536):
            yield big[i : i + 65_536]

    r = client.post("/v1/usage-events", headers=headers, content=chunks())
    assert r.status_code == 413 and "ACCORD_API_MAX_BODY_MB=1" in r.json()["error"]["message"]


# ------------------------------------------------------------------------------- fuzzing


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".jsonl"]))
def test_any_bytes_as_a_usage_file_are_read_or_refused_with_an_accord_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, suffix: str
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / f"u{suffix}"
    path.write_bytes(data)
    try:
        table = read_usage_file(path)
    except (Rejected, ValidationError):
        return
    assert table.column_names == list(FIELDS)


CELL = st.text(alphabet=st.sampled_from('ab1-,"\n\r\x00é '), max_size=6)


@FUZZ
@given(header=st.lists(st.sampled_from([*FIELDS, "at", "colour", ""]), max_size=5), rows=st.lists(
    st.lists(CELL, max_size=6), max_size=4))  # fmt: skip
def test_structured_csv_is_read_or_refused_with_an_accord_error(
    tmp_path_factory: pytest.TempPathFactory, header: list[str], rows: list[list[str]]
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "u.csv"
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8", newline="")
    try:
        table = read_usage_file(path)
    except (Rejected, ValidationError):
        return
    assert all(not v or '"' not in v for c in table.columns for v in c.to_pylist())


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from([*FIELDS, "x"]), inner, max_size=4),
    max_leaves=8,
)


@CLI_FUZZ
@given(records=st.lists(JSON_VALUE, max_size=4), cut=st.integers(0, 3))
def test_structured_jsonl_through_the_cli_never_crashes(
    home: Path, tmp_path_factory: pytest.TempPathFactory, records: list[object], cut: int
) -> None:
    text = "".join(json.dumps(r) + "\n" for r in records)
    path = tmp_path_factory.mktemp("fuzz") / "u.jsonl"
    path.write_text(text[: len(text) - cut], encoding="utf-8")
    code, out, err = accord("usage", "ingest", str(path))
    assert code in (0, 1, 2) and "Traceback" not in out + err


MIDI = st.builds(
    lambda fmt, tracks, division, body: (
        b"MThd\x00\x00\x00\x06" + struct.pack(">HHH", fmt, tracks, division)
        + b"MTrk" + struct.pack(">I", len(body)) + body
    ),
    st.integers(0, 3), st.integers(0, 3), st.integers(0, 2**16 - 1), st.binary(max_size=120),
) | st.binary(max_size=200).map(lambda body: b"MThd" + body)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(data=MIDI)
def test_garbage_midi_is_read_or_refused_with_an_accord_error(data: bytes) -> None:
    try:
        read_performance(data)
    except ValidationError as exc:
        assert str(exc).startswith("midi=")


@CLI_FUZZ
@given(data=MIDI)
def test_garbage_midi_for_the_guard_is_one_clear_error(
    home: Path, tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "piece.mid"
    path.write_bytes(data)
    code, out, err = accord("guard", "check", str(path))
    assert code in (0, 1, 2) and "Traceback" not in out + err
    if code == 2:
        assert "internal error" not in one_error_line(err)


@CLI_FUZZ
@given(data=st.binary(max_size=200) | st.builds(lambda v: json.dumps(v).encode(), JSON_VALUE))
def test_garbage_proofs_and_credentials_are_invalid_or_one_clear_error(
    home: Path, tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    proof, sidecar = folder / "x.proof.json", folder / "x.credential.json"
    proof.write_bytes(data)
    sidecar.write_bytes(data)
    key = "ab" * 32
    for args in (["dataset", "verify", str(proof), "--root", "00" * 32, "--public-key", key],
                 ["credential", "verify", str(sidecar)]):  # fmt: skip
        code, out, err = accord(*args)
        assert code in (0, 1, 2) and "Traceback" not in out + err
        if code == 2:
            assert "internal error" not in one_error_line(err), args
