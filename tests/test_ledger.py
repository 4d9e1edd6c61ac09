"""The ledger: balanced, immutable, linked legs post atomically, and tampering is detected and named.

Tampering is done the way an attacker with database access would: raw SQL on the real store
(SQLite and PostgreSQL), then :func:`ledger.verify` must say what was done, and where.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from typer.testing import CliRunner

from accord.cli import app
from accord.errors import Conflict, LedgerError, ValidationError
from accord.registry.store import Store
from accord.royalties import heads, ledger
from accord.royalties.ledger import Leg, account_id
from accord.settings import Settings
from accord.signing import OperatorKey, ensure_operator_key

SRC = account_id(ledger.REVENUE, "EUR", "revenue_source")


def pay(party: str, amount: int, code: str = "royalty") -> Leg:
    return Leg(SRC, account_id(party, "EUR", "payable"), amount, code, "training")


def post_signed(store: Store, key: OperatorKey, legs: list[Leg], period: str, event: str) -> list[ledger.Transfer]:
    """Post legs and sign the head in one transaction, as a close, payout or reversal does."""
    with store.engine.begin() as conn:
        posted = ledger.post(store, legs, period=period, conn=conn)
        heads.sign_head(store, conn, key, event=event, period=period)
    return posted


@pytest.fixture
def key(settings: Settings) -> OperatorKey:
    return ensure_operator_key(settings.home)[0]


def seeded(store: Store, key: OperatorKey) -> list[ledger.Transfer]:
    """Five transfers under three signed heads: two closes and a payout."""
    first = post_signed(store, key, [pay("P-A", 500), pay("P-B", 300)], "2026-10", "close")
    second = post_signed(store, key, [pay("P-A", 200), pay("P-C", 100)], "2026-11", "close")
    paid = Leg("P-A:EUR:payable", "P-A:EUR:paid", 700, "payout", "payable")
    return first + second + post_signed(store, key, [paid], "2026-11", "payout")


def tamper(store: Store, *statements: str) -> None:
    with store.engine.begin() as conn:
        for sql in statements:
            conn.execute(text(sql))


def test_debits_equal_credits_and_balances_follow_transfers(store: Store, key: OperatorKey) -> None:
    posted = seeded(store, key)
    bal = ledger.balances(ledger.transfers(store))
    assert sum(bal.values()) == 0  # every transfer debits and credits the same amount
    assert bal["P-A:EUR:paid"] == 700 and bal[SRC] == -1100
    assert [t.seq for t in posted] == [1, 2, 3, 4, 5]
    check = ledger.verify(store, key.public_hex)
    assert check.ok and check.head == posted[-1].hash and check.heads == 3, check.problems


def test_linked_legs_post_all_or_nothing(store: Store, key: OperatorKey) -> None:
    seeded(store, key)
    bad = Leg(SRC, account_id("P-A", "USD", "payable"), 5, "royalty")  # mixed currencies: refused
    with pytest.raises(LedgerError, match="different currencies"):
        ledger.post(store, [pay("P-D", 10), bad], period="2026-11")
    with pytest.raises(LedgerError, match="micro-units > 0"):
        ledger.post(store, [pay("P-D", 10), pay("P-E", 0)], period="2026-11")
    assert len(ledger.transfers(store)) == 5
    assert "P-D:EUR:payable" not in ledger.balances(ledger.transfers(store))


def test_the_same_linked_transfer_is_never_posted_twice(store: Store) -> None:
    ledger.post(store, [pay("P-A", 5)], period="2026-11", linked_id="L-1")
    with pytest.raises(Conflict, match="already posted"):
        ledger.post(store, [pay("P-A", 5)], period="2026-11", linked_id="L-1")


def test_a_correction_is_a_reversing_transfer_with_a_reason_and_a_signed_head(store: Store, key: OperatorKey) -> None:
    posted = seeded(store, key)
    rev = ledger.reverse(
        store, posted[3].transfer_id, reason_code="wrong_party", period="2026-11", key=key, note="P-D owns it"
    )
    assert (rev.debit_account, rev.credit_account, rev.amount) == ("P-C:EUR:payable", SRC, 100)
    assert (rev.code, rev.reverses, rev.reason) == ("reversal", posted[3].transfer_id, "wrong_party: P-D owns it")
    assert ledger.balances(ledger.transfers(store))["P-C:EUR:payable"] == 0
    with pytest.raises(Conflict, match="already reversed"):
        ledger.reverse(store, posted[3].transfer_id, reason_code="other", period="2026-11", key=key)
    with pytest.raises(ValidationError, match="reason_code"):
        ledger.reverse(store, posted[2].transfer_id, reason_code="oops", period="2026-11", key=key)
    latest = heads.signed_heads(store)[-1]
    assert (latest.event, latest.subject, latest.transfers, latest.last_hash) == (
        "reversal",
        posted[3].transfer_id,
        6,
        rev.hash,
    )
    assert ledger.verify(store, key.public_hex).ok


SWAP_2_AND_3 = (  # via a free number: the primary key must stay unique meanwhile
    "UPDATE ledger_transfers SET seq = 99 WHERE seq = 2",
    "UPDATE ledger_transfers SET seq = 2 WHERE seq = 3",
    "UPDATE ledger_transfers SET seq = 3 WHERE seq = 99",
)


@pytest.mark.parametrize(
    ("statements", "expect"),
    [
        pytest.param(["DELETE FROM ledger_transfers WHERE seq = 5"], ["seq 5", "truncated"], id="last-removed"),
        pytest.param(["DELETE FROM ledger_transfers WHERE seq = 1"], ["seq 1", "first", "deleted"], id="first-removed"),
        pytest.param(["DELETE FROM ledger_transfers WHERE seq = 3"], ["seq 4", "seq 3", "deleted"], id="middle"),
        pytest.param(SWAP_2_AND_3, ["seq 2", "reordered", "posted as seq 3"], id="swapped-pair"),
        pytest.param(
            ["UPDATE ledger_transfers SET amount = 501 WHERE seq = 1"], ["seq 1", "field amount", "501"], id="amount"
        ),
        pytest.param(
            ["UPDATE ledger_transfers SET credit_account = 'P-X:EUR:payable' WHERE seq = 3"],
            ["seq 3", "field credit_account", "P-X"],
            id="account",
        ),
        pytest.param(
            ["UPDATE ledger_transfers SET reason = 'output' WHERE seq = 4"], ["seq 4", "field reason"], id="memo"
        ),
    ],
)
def test_verify_names_a_removed_reordered_or_edited_transfer(
    store: Store, key: OperatorKey, statements: list[str], expect: list[str]
) -> None:
    posted = seeded(store, key)
    tamper(store, *statements)
    result = ledger.verify(store, key.public_hex)
    assert not result.ok
    first = result.problems[0]
    assert all(word in first for word in expect), result.problems
    if "truncated" in expect:  # the signed head names the transfer that is gone
        assert posted[-1].transfer_id in first


def test_a_ledger_cut_back_to_an_earlier_head_is_found(store: Store, key: OperatorKey) -> None:
    """The attack a bare hash chain cannot see: drop the last event's transfers (and its head)."""
    seeded(store, key)
    tamper(store, "DELETE FROM ledger_transfers WHERE seq = 5")
    assert any("truncated" in p for p in ledger.verify(store, key.public_hex).problems)


def test_transfers_after_the_latest_signed_head_are_found(store: Store, key: OperatorKey) -> None:
    seeded(store, key)
    ledger.post(store, [pay("P-Z", 1)], period="2026-11")  # posted outside a close, payout or reversal
    problems = ledger.verify(store, key.public_hex).problems
    assert any("seq 6..6" in p and "after the latest signed head #3" in p for p in problems), problems


def test_a_removed_head_is_named(store: Store, key: OperatorKey) -> None:
    seeded(store, key)
    tamper(store, "DELETE FROM ledger_heads WHERE head_seq = 2")
    problems = ledger.verify(store, key.public_hex).problems
    assert any("signed head #3" in p and "#2 before it is missing" in p for p in problems), problems


def test_removing_the_latest_head_leaves_its_transfers_unsigned(store: Store, key: OperatorKey) -> None:
    seeded(store, key)
    tamper(store, "DELETE FROM ledger_heads WHERE head_seq = 3")
    problems = ledger.verify(store, key.public_hex).problems
    assert any("seq 5..5" in p and "head that covered them was removed" in p for p in problems), problems


def test_a_head_edited_to_match_a_truncated_ledger_fails_its_signature(store: Store, key: OperatorKey) -> None:
    posted = seeded(store, key)
    tamper(
        store,
        "DELETE FROM ledger_transfers WHERE seq = 5",
        f"UPDATE ledger_heads SET transfers = 4, last_hash = '{posted[3].hash}', "
        f"last_transfer_id = '{posted[3].transfer_id}' WHERE head_seq = 3",
    )
    problems = ledger.verify(store, key.public_hex).problems
    assert problems and "signed head #3" in problems[0] and "signature is not valid" in problems[0], problems


def test_a_head_forged_with_another_key_is_refused_against_the_operators_key(store: Store, key: OperatorKey) -> None:
    seeded(store, key)
    forger = OperatorKey(Ed25519PrivateKey.generate())
    tamper(store, "DELETE FROM ledger_transfers WHERE seq = 5", "DELETE FROM ledger_heads WHERE head_seq = 3")
    with store.engine.begin() as conn:  # a well-formed head over the cut ledger, signed by someone else
        heads.sign_head(store, conn, forger, event="payout", period="2026-11")
    problems = ledger.verify(store, key.public_hex).problems
    assert any("signed head #3" in p and "not the operator's key" in p for p in problems), problems
    as_forger = ledger.verify(store, forger.public_hex).problems  # an auditor given the wrong key: heads 1-2 fail
    assert any("signed head #1" in p and "not the operator's key" in p for p in as_forger), as_forger


def test_the_cli_verifies_with_only_the_operators_public_key(
    store: Store, key: OperatorKey, settings: Settings, tmp_path: Path
) -> None:
    seeded(store, key)
    runner = CliRunner()
    pem = tmp_path / "operator.pub.pem"
    pem.write_text(key.public_pem)
    for given in (key.public_hex, str(pem)):
        result = runner.invoke(app, ["ledger", "verify", "--public-key", given, "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["ok"] and report["heads"] == 3 and report["public_key"] == key.public_hex
    other = OperatorKey(Ed25519PrivateKey.generate()).public_hex
    result = runner.invoke(app, ["ledger", "verify", "--public-key", other])
    assert result.exit_code == 1 and "signed head #1" in result.output and "not the operator's key" in result.output
    tamper(store, "DELETE FROM ledger_transfers WHERE seq = 5")
    result = runner.invoke(app, ["ledger", "verify"])
    assert result.exit_code == 1 and "truncated" in result.output


def test_the_api_and_the_portal_give_the_same_verdict_against_the_operators_key(
    store: Store, key: OperatorKey, settings: Settings
) -> None:
    from fastapi.testclient import TestClient

    from accord.api.app import create_app
    from accord.api.auth import create_key
    from accord.web.earnings import verify_ledger

    seeded(store, key)
    tamper(store, "DELETE FROM ledger_transfers WHERE seq = 5")
    portal = verify_ledger(store, settings)
    assert portal["available"] and not portal["valid"] and any("truncated" in p for p in portal["problems"])
    secret = create_key(store, role="operator", party_id="ops")[1]
    with TestClient(create_app(settings, store=store)) as c:
        api = c.get("/v1/ledger/verify", headers={"Authorization": f"Bearer {secret}"}).json()
    assert (api["valid"], api["problems"], api["heads"]) == (False, portal["problems"], 3)
    assert api["public_key"] == key.public_hex


def test_a_ledger_kept_before_heads_is_adopted_once_after_its_chain_is_checked(store: Store, key: OperatorKey) -> None:
    ledger.post(store, [pay("P-A", 500)], period="2026-09")  # as close and payout did before heads
    ledger.post(store, [pay("P-B", 300)], period="2026-10")
    with store.engine.begin() as conn:  # a period closed back then has no close head
        conn.execute(text("INSERT INTO royalty_periods (period, status, opened_at, closed_by, run_id) "
                          "VALUES ('2026-10', 'closed', '2026-10-01 00:00:00', '', '')"))  # fmt: skip
    assert any(
        "no signed head" in p and "accord ledger adopt" in p for p in ledger.verify(store, key.public_hex).problems
    )
    tamper(store, "UPDATE ledger_transfers SET amount = 301 WHERE seq = 2")
    with pytest.raises(LedgerError, match="seq 2"):
        ledger.adopt(store, key)  # a broken chain is not signed
    tamper(store, "UPDATE ledger_transfers SET amount = 300 WHERE seq = 2")
    result = CliRunner().invoke(app, ["ledger", "adopt"])
    assert result.exit_code == 0 and "signed head #1 (adopt of 2026-10" in result.output, result.output
    assert ledger.verify(store, key.public_hex).ok
    with pytest.raises(Conflict, match="already has signed heads"):
        ledger.adopt(store, key)


def test_a_closes_head_file_verifies_with_only_the_public_key_and_rfc_8785(
    store: Store, key: OperatorKey, tmp_path: Path
) -> None:
    """What a rights holder keeps beside its statements checks without Accord: JCS bytes, Ed25519."""
    import rfc8785
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    posted = seeded(store, key)
    path = heads.write_head_file(store, "2026-11", tmp_path)
    assert path is not None and path.name == "ledger-head.json"
    doc = json.loads(path.read_text())
    assert (doc["head"]["event"], doc["head"]["transfers"], doc["head"]["last_hash"]) == ("close", 4, posted[3].hash)
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(doc["signature"]["public_key"]))
    public.verify(bytes.fromhex(doc["signature"]["value"]), rfc8785.dumps(doc["head"]))  # raises if forged
    assert doc["signature"]["public_key"] == key.public_hex
    assert heads.write_head_file(store, "2026-12", tmp_path / "open") is None  # not closed: no head to write
