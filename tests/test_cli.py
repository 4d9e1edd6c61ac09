"""The accord command, driven through Typer's runner as a user would (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli import app
from accord.registry.store import Store
from accord.settings import Settings
from tests.deliveries import small_catalog, write_delivery

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "minimal-delivery"


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def imported(settings: Settings, tmp_path: Path) -> Path:
    folder = write_delivery(tmp_path / "d", small_catalog())
    code, out = run("catalog", "import", str(folder))
    assert code == 0, out
    return folder


def test_import_reports_what_it_added_and_exits_0(settings: Settings, tmp_path: Path) -> None:
    code, out = run("catalog", "import", str(write_delivery(tmp_path / "d", small_catalog())), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["status"] == "imported" and report["added"]["recordings"] == 2


def test_a_rejected_import_exits_1_and_lists_every_problem_as_json(settings: Settings, tmp_path: Path) -> None:
    doc = small_catalog()
    doc["recordings"][0]["isrc"] = "nonsense"
    doc["works"][0]["shares"][0]["share"] = "10"
    code, out = run("catalog", "import", str(write_delivery(tmp_path / "d", doc)), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["status"] == "rejected"
    assert {p["code"] for p in report["problems"]} == {"invalid_identifier", "shares_sum"}
    assert all({"file", "location", "field", "value", "expected"} <= set(p) for p in report["problems"])


def test_a_rejected_import_prints_a_table_without_traceback(settings: Settings, tmp_path: Path) -> None:
    doc = small_catalog()
    doc["recordings"][0]["duration_ms"] = -1
    code, out = run("catalog", "import", str(write_delivery(tmp_path / "d", doc)))
    assert code == 1
    assert "duration_ms" in out and "Traceback" not in out


def test_check_exits_0_when_eligible_and_1_when_not(imported: Path) -> None:
    code, out = run("check", "GB-XYZ-26-00001", "--use", "train", "--at", "2026-12-01", "--territory", "GB")
    assert code == 1  # P-PUB2 holds 40% of W-1 and has not signed
    assert "P-PUB2" in out
    code, out = run("check", "GBXYZ2600002", "--use", "train", "--at", "2026-12-01", "--territory", "GB", "--json")
    assert code == 0
    decision = json.loads(out)
    assert decision["eligible"] and decision["relied_on"] == ["AGR-M", "AGR-P"]


def test_check_exits_2_on_bad_input_with_one_clear_message(imported: Path) -> None:
    code, out = run("check", "GBXYZ2600002", "--use", "train", "--at", "yesterday", "--territory", "GB")
    assert code == 2 and "at:" in out and "Traceback" not in out
    code, out = run("check", "NOT-AN-ISRC", "--use", "train", "--territory", "GB")
    assert code == 2 and "ISRC" in out
    code, out = run("check", "GBXYZ2600002", "--use", "sing", "--territory", "GB")
    assert code == 2 and "use" in out


def test_granting_the_missing_licence_makes_the_recording_eligible(imported: Path) -> None:
    args = ["agreement", "grant", "--id", "AGR-P2", "--licensor", "P-PUB2", "--side", "publishing"]
    args += ["--use", "train", "--start", "2026-06-01", "--work", "W-1", "--pool-share", "25"]
    code, out = run(*args)
    assert code == 0, out
    code, _ = run("agreement", "grant", *args[2:])  # the same grant again changes nothing
    assert code == 0
    code, out = run("check", "GBXYZ2600001", "--use", "train", "--at", "2026-12-01", "--territory", "GB")
    assert code == 0, out
    code, out = run("agreement", "list", "--json")
    assert [a["id"] for a in json.loads(out)] == ["AGR-M", "AGR-P", "AGR-P2"]


def test_granting_with_bad_options_names_each_field(imported: Path) -> None:
    code, out = run(
        "agreement",
        "grant",
        "--id",
        "AGR-BAD",
        "--licensor",
        "P-NOBODY",
        "--side",
        "sideways",
        "--use",
        "voice",
        "--start",
        "2026-13-01",
        "--territory",
        "XX",
    )
    assert code == 1
    for name in ("licensor", "side", "uses[0]", "start", "territory.include[0]"):
        assert name in out


def test_ending_an_agreement_keeps_its_history(imported: Path, settings: Settings) -> None:
    code, out = run("agreement", "end", "AGR-M", "--at", "2026-11-15")
    assert code == 0, out
    code, _ = run("check", "GBXYZ2600002", "--use", "train", "--at", "2026-12-01", "--territory", "GB")
    assert code == 1
    code, _ = run("check", "GBXYZ2600002", "--use", "train", "--at", "2026-11-01", "--territory", "GB")
    assert code == 0
    versions = Store.open(settings, migrate=False).history("agreements", "AGR-M")
    assert versions[0].record.end is None and versions[1].record.end is not None
    code, out = run("agreement", "end", "AGR-M", "--at", "2027-01-01")
    assert code == 2 and "brought forward" in out


def test_an_opt_out_is_recorded_once_and_blocks_the_use(imported: Path) -> None:
    args = ["optout", "add", "--party", "P-ARTIST", "--scope", "catalog", "--use", "train", "--effective", "2026-11-01"]
    assert run(*args)[0] == 0
    assert run(*args)[0] == 0
    code, out = run("optout", "list", "--json")
    assert len(json.loads(out)) == 1
    code, out = run("check", "GBXYZ2600002", "--use", "train", "--at", "2026-12-01", "--territory", "GB")
    assert code == 1 and "opted_out" in out
    code, out = run("check", "GBXYZ2600002", "--use", "generate", "--at", "2026-12-01", "--territory", "GB")
    assert code == 0


def test_an_opt_out_without_standing_is_refused(imported: Path) -> None:
    code, out = run(
        "optout",
        "add",
        "--party",
        "P-PUB2",
        "--scope",
        "recording",
        "--target",
        "GBXYZ2600002",
        "--use",
        "all",
        "--effective",
        "2026-11-01",
    )
    assert code == 1 and "no_standing" in out


def test_show_and_log_describe_the_registry(imported: Path) -> None:
    code, out = run("catalog", "show", "--json")
    assert code == 0 and json.loads(out)["recordings"] == 2
    code, out = run("catalog", "show", "GBXYZ2600001", "--json")
    detail = json.loads(out)
    assert detail["master_shares"] == {"P-LABEL": 1_000_000} and len(detail["history"]) == 1
    code, out = run("catalog", "show", "GBXYZ2699999")
    assert code == 2 and "not in the registry" in out
    code, out = run("log", "--json")
    assert {e["action"] for e in json.loads(out)} >= {"delivery.imported", "agreement.added"}
    code, out = run("catalog", "eligibility", "--territory", "GB", "--at", "2026-12-01", "--json")
    rows = json.loads(out)
    assert [r["isrc"] for r in rows] == ["GBXYZ2600001", "GBXYZ2600002"]
    assert rows[1]["train"]["eligible"] and not rows[1]["remix"]["eligible"]


@pytest.mark.parametrize(
    ("code_text", "kind", "exit_code", "expected_kind"),
    [
        ("T-034.524.680-1", None, 0, "iswc"),
        ("T1234567893", None, 1, "iswc"),
        ("0000 0001 2281 955X", None, 0, "isni"),
        ("4006381333931", None, 0, "gtin"),
        ("4006381333932", None, 1, "gtin"),
        ("PADPIDA2013020802I", None, 0, "dpid"),
        ("US-SKG-19-12345", "isrc", 0, "isrc"),
        ("00014107338", "ipi_name", 0, "ipi_name"),
    ],
)
def test_id_check_names_the_kind_and_exits_by_validity(
    code_text: str, kind: str | None, exit_code: int, expected_kind: str
) -> None:
    args = ["id", "check", code_text, "--json"] + (["--kind", kind] if kind else [])
    code, out = run(*args)
    assert code == exit_code
    assert json.loads(out)["kind"] == expected_kind


def test_id_check_with_an_unknown_kind_is_a_usage_error() -> None:
    code, out = run("id", "check", "X", "--kind", "passport")
    assert code == 2 and "passport" in out


def test_the_documented_example_delivery_imports_and_checks(settings: Settings) -> None:
    code, out = run("catalog", "import", str(EXAMPLE))
    assert code == 0, out
    code, out = run("check", "GB-XYZ-26-00001", "--use", "train", "--at", "2026-12-01", "--territory", "GB")
    assert code == 0, out
    code, out = run("check", "GB-XYZ-26-00001", "--use", "train", "--at", "2026-12-01", "--territory", "FR")
    assert code == 1 and "territory_not_covered" in out
