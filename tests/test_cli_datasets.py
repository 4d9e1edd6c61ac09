"""``accord dataset``, ``accord model``, ``accord audit`` and ``accord key``, as a user drives them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli import app
from accord.settings import Settings
from tests.deliveries import small_catalog, write_delivery

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def root(settings: Settings, tmp_path: Path) -> str:
    assert run("init")[0] == 0
    doc = small_catalog()
    doc["agreements"][1]["model_scope"] = "approved_versions"
    assert run("catalog", "import", str(write_delivery(tmp_path / "d", doc)))[0] == 0
    code, out = run("dataset", "build", "--territory", "GB", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["tree_size"] == 1 and data["excluded"] == 1  # W-1's 40% publisher has not signed
    return str(data["manifest_root"])


def test_build_prints_a_summary_and_list_shows_it(root: str) -> None:
    code, out = run("dataset", "list", "--json")
    assert code == 0 and json.loads(out)[0]["root"] == root
    code, out = run("dataset", "build", "--territory", "GB")
    assert code == 0 and "built before" in out and "no_agreement" in out


def test_prove_and_verify_as_a_rights_holder_would(root: str, tmp_path: Path) -> None:
    code, out = run("dataset", "prove", root[:12], "--party", "P-LABEL", "--out", str(tmp_path / "proofs"))
    assert code == 0, out
    files = sorted((tmp_path / "proofs" / "P-LABEL").glob("*.proof.json"))
    assert [f.name for f in files] == ["GBXYZ2600001.proof.json", "GBXYZ2600002.proof.json"]
    key = run("key", "export")[1].strip()
    code, out = run("dataset", "verify", *map(str, files), "--root", root, "--public-key", key, "--json")
    verdicts = json.loads(out)
    assert code == 0 and [v["kind"] for v in verdicts] == ["non_inclusion", "inclusion"]
    pem = tmp_path / "operator.pem"
    pem.write_text(run("key", "export", "--pem")[1])
    assert run("dataset", "verify", str(files[1]), "--root", root, "--public-key", str(pem))[0] == 0
    pinned = tmp_path / "pinned.key"
    pinned.write_text(key + "\n")
    assert run("dataset", "verify", str(files[1]), "--root", root, "--public-key-file", str(pinned))[0] == 0
    code, out = run("dataset", "verify", str(files[1]), "--root", "00" * 32, "--public-key", key)
    assert code == 1 and "INVALID" in out


def test_verify_without_the_operator_key_is_refused_in_one_line(root: str, tmp_path: Path) -> None:
    assert run("dataset", "prove", root, "--party", "P-LABEL", "--out", str(tmp_path / "p"))[0] == 0
    proof = str(tmp_path / "p" / "P-LABEL" / "GBXYZ2600002.proof.json")
    code, out = run("dataset", "verify", proof, "--root", root)
    assert code == 2 and "--public-key" in out and "never trusted" in out
    assert len(out.strip().splitlines()) == 1


def test_a_proof_re_signed_by_another_key_is_invalid_against_the_operator_key(root: str, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from accord.signing import OperatorKey

    assert run("dataset", "prove", root, "--party", "P-LABEL", "--out", str(tmp_path / "p"))[0] == 0
    path = tmp_path / "p" / "P-LABEL" / "GBXYZ2600002.proof.json"
    proof = json.loads(path.read_text())
    forger = OperatorKey(Ed25519PrivateKey.generate())
    proof["signature"] = forger.signature_block(proof["statement"])
    proof["claim_signature"] = forger.signature_block(proof["claim"])
    path.write_text(json.dumps(proof))
    key = run("key", "export")[1].strip()
    code, out = run("dataset", "verify", str(path), "--root", root, "--public-key", key, "--json")
    assert code == 1 and json.loads(out)[0]["valid"] is False


def test_an_old_format_proof_is_refused_saying_what_to_do(root: str, tmp_path: Path) -> None:
    old = tmp_path / "old.proof.json"
    old.write_text(json.dumps({"format": "accord-proof/1", "kind": "inclusion", "isrc": "GBXYZ2600002"}))
    key = run("key", "export")[1].strip()
    code, out = run("dataset", "verify", str(old), "--root", root, "--public-key", key, "--json")
    [verdict] = json.loads(out)
    assert code == 1 and verdict["valid"] is False
    assert "no longer accepted" in verdict["checks"][0]["detail"]


def test_summary_and_diff(root: str, tmp_path: Path) -> None:
    code, out = run("dataset", "summary", root, "--out", str(tmp_path / "s"))
    assert code == 0 and (tmp_path / "s" / "summary.json").is_file()
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["totals"]["items"] == 1
    grant = ["agreement", "grant", "--id", "AGR-P2", "--licensor", "P-PUB2", "--side", "publishing"]
    assert run(*grant, "--use", "train", "--start", "2026-01-01")[0] == 0
    code, out = run("dataset", "build", "--territory", "GB", "--json")
    later = json.loads(out)["manifest_root"]
    code, out = run("dataset", "diff", root, later, "--json")
    diff = json.loads(out)
    assert code == 0 and [c["isrc"] for c in diff["added"]] == ["GBXYZ2600001"]


def test_models_wait_for_approval_and_the_audit_flags_an_opt_out(root: str, tmp_path: Path) -> None:
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"preset": "demo"}))
    code, out = run("model", "register", "--id", "m-1", "--manifest", root[:10], "--card", str(card))
    assert code == 0, out
    code, out = run("audit", "--json")
    report = json.loads(out)
    assert report["pending_approvals_by_licensor"] == {"P-PUB": ["m-1"]}
    assert run("model", "approve", "m-1", "--party", "P-PUB", "--note", "ok")[0] == 0
    code, out = run("model", "list", "--json")
    assert json.loads(out)[0]["blocked_uses"] == []
    optout = ["optout", "add", "--party", "P-ARTIST", "--scope", "catalog", "--use", "train"]
    assert run(*optout, "--effective", "2026-01-01")[0] == 0
    code, out = run("audit", "--json")
    report = json.loads(out)
    flags = report["manifests"][0]["flags"]
    assert [(f["isrc"], f["use"]) for f in flags] == [("GBXYZ2600002", "train")]
    assert report["models"][0]["blocked_uses"] == ["generate", "remix", "train"]
    code, out = run("audit")
    assert code == 0 and "opted_out" in out
    assert run("model", "approve", "m-1", "--party", "P-NOBODY")[0] == 2


def test_unknown_manifests_are_a_clear_error(root: str) -> None:
    code, out = run("dataset", "prove", "deadbeefdeadbeef", "--party", "P-LABEL")
    assert code == 2 and "no manifest" in out
    code, out = run("dataset", "summary", "abc")
    assert code == 2 and "too short" in out


def test_a_proof_shows_a_co_owner_that_asked_not_to_be_named_only_as_a_commitment(
    settings: Settings, tmp_path: Path
) -> None:
    assert run("init")[0] == 0
    doc = small_catalog()
    doc["parties"][1]["disclose"] = False  # P-PUB, publisher of W-2 (embodied by GBXYZ2600002)
    assert run("catalog", "import", str(write_delivery(tmp_path / "d", doc)))[0] == 0
    root = json.loads(run("dataset", "build", "--territory", "GB", "--json")[1])["manifest_root"]
    key = run("key", "export")[1].strip()
    for party in ("P-LABEL", "P-PUB"):
        assert run("dataset", "prove", root, "--party", party, "--out", str(tmp_path / "p"))[0] == 0
    label_proof = tmp_path / "p" / "P-LABEL" / "GBXYZ2600002.proof.json"
    item = json.loads(label_proof.read_text())["item"]
    shown = {e["value"] for name in ("agreements", "publishers", "standing") for e in item[name] if "value" in e}
    assert shown == {"AGR-M", "P-LABEL", "P-ARTIST", "P-WRITER"}  # P-PUB and its AGR-P: commitments only
    assert [set(e) for e in item["publishers"]] == [{"commitment"}]
    assert "Test Publishing" not in label_proof.read_text()
    own = tmp_path / "p" / "P-PUB" / "GBXYZ2600002.proof.json"
    assert {e["value"] for e in json.loads(own.read_text())["item"]["publishers"]} == {"P-PUB"}  # its own, named
    code, out = run("dataset", "verify", str(label_proof), str(own), "--root", root, "--public-key", key, "--json")
    assert code == 0 and all(v["valid"] for v in json.loads(out)), out
