"""The ledger: balanced, immutable, linked legs post atomically, and tampering is detected."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from accord.errors import Conflict, LedgerError, ValidationError
from accord.registry.store import Store
from accord.royalties import ledger
from accord.royalties.ledger import Leg, account_id

SRC = account_id(ledger.REVENUE, "EUR", "revenue_source")


def pay(party: str, amount: int, code: str = "royalty") -> Leg:
    return Leg(SRC, account_id(party, "EUR", "payable"), amount, code, "training")


def seeded(store: Store) -> list[ledger.Transfer]:
    first = ledger.post(store, [pay("P-A", 500), pay("P-B", 300)], period="2026-10")
    second = ledger.post(store, [pay("P-A", 200), pay("P-C", 100)], period="2026-11")
    return first + second


def test_debits_equal_credits_and_balances_follow_transfers(store: Store) -> None:
    posted = seeded(store)
    bal = ledger.balances(ledger.transfers(store))
    assert sum(bal.values()) == 0  # every transfer debits and credits the same amount
    assert bal["P-A:EUR:payable"] == 700 and bal[SRC] == -1100
    assert [t.seq for t in posted] == [1, 2, 3, 4]
    assert ledger.verify(store).ok and ledger.verify(store).head == posted[-1].hash


def test_linked_legs_post_all_or_nothing(store: Store) -> None:
    seeded(store)
    bad = Leg(SRC, account_id("P-A", "USD", "payable"), 5, "royalty")  # mixed currencies: refused
    with pytest.raises(LedgerError, match="different currencies"):
        ledger.post(store, [pay("P-D", 10), bad], period="2026-11")
    with pytest.raises(LedgerError, match="micro-units > 0"):
        ledger.post(store, [pay("P-D", 10), pay("P-E", 0)], period="2026-11")
    assert len(ledger.transfers(store)) == 4
    assert "P-D:EUR:payable" not in ledger.balances(ledger.transfers(store))


def test_the_same_linked_transfer_is_never_posted_twice(store: Store) -> None:
    ledger.post(store, [pay("P-A", 5)], period="2026-11", linked_id="L-1")
    with pytest.raises(Conflict, match="already posted"):
        ledger.post(store, [pay("P-A", 5)], period="2026-11", linked_id="L-1")


def test_a_correction_is_a_reversing_transfer_with_a_reason(store: Store) -> None:
    posted = seeded(store)
    rev = ledger.reverse(store, posted[3].transfer_id, reason_code="wrong_party", period="2026-11", note="P-D owns it")
    assert (rev.debit_account, rev.credit_account, rev.amount) == ("P-C:EUR:payable", SRC, 100)
    assert (rev.code, rev.reverses, rev.reason) == ("reversal", posted[3].transfer_id, "wrong_party: P-D owns it")
    assert ledger.balances(ledger.transfers(store))["P-C:EUR:payable"] == 0
    with pytest.raises(Conflict, match="already reversed"):
        ledger.reverse(store, posted[3].transfer_id, reason_code="other", period="2026-11")
    with pytest.raises(ValidationError, match="reason_code"):
        ledger.reverse(store, posted[2].transfer_id, reason_code="oops", period="2026-11")
    assert ledger.verify(store).ok


@pytest.mark.parametrize(
    ("tamper", "expect"),
    [
        ("UPDATE ledger_transfers SET amount = 501 WHERE seq = 1", ["seq 1", "edited"]),
        ("UPDATE ledger_transfers SET credit_account = 'P-X:EUR:payable' WHERE seq = 3", ["seq 3", "edited"]),
        ("DELETE FROM ledger_transfers WHERE seq = 2", ["seq 3", "deleted"]),
        (
            "UPDATE ledger_transfers SET seq = CASE seq WHEN 2 THEN 3 ELSE 2 END WHERE seq IN (2, 3)",
            ["seq 2", "reordered"],
        ),
    ],
)
def test_verify_names_an_edited_deleted_or_reordered_transfer(store: Store, tamper: str, expect: list[str]) -> None:
    seeded(store)
    with store.engine.begin() as conn:
        if "seq = CASE" in tamper:  # swap via a free number (the primary key must stay unique meanwhile)
            conn.execute(text("UPDATE ledger_transfers SET seq = 99 WHERE seq = 2"))
            conn.execute(text("UPDATE ledger_transfers SET seq = 2 WHERE seq = 3"))
            conn.execute(text("UPDATE ledger_transfers SET seq = 3 WHERE seq = 99"))
        else:
            conn.execute(text(tamper))
    result = ledger.verify(store)
    assert not result.ok
    first = result.problems[0]
    assert all(word in first for word in expect), result.problems
