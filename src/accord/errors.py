"""One error hierarchy for Accord.

Every message names the field, the value and what was expected, so the CLI, the API
and the tests can show it as it is. The CLI prints ``str(error)`` without a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class AccordError(Exception):
    """Root of every error Accord raises on purpose.

    Attributes:
        code: a stable machine-readable code (``"validation"``, ``"not_found"`` ...).
    """

    code = "accord_error"


class ValidationError(AccordError):
    """Input that breaks a rule: a malformed identifier, a bad share, a bad date."""

    code = "validation"

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class InvalidIdentifier(ValidationError):
    """An identifier that fails its format or check-digit rule.

    Attributes:
        kind: the identifier kind (``"isrc"``, ``"iswc"`` ...).
        rule: the rule that failed (``"length"``, ``"format"``, ``"check_digit"``, ``"prefix"`` ...).
    """

    code = "invalid_identifier"

    def __init__(self, message: str, *, kind: str, rule: str, value: object = None) -> None:
        super().__init__(message, field=kind, value=value)
        self.kind = kind
        self.rule = rule


class NotFound(AccordError):
    """A thing named by id that the registry does not hold."""

    code = "not_found"


class Conflict(AccordError):
    """A request that contradicts what is already recorded."""

    code = "conflict"


class NotLicensed(AccordError):
    """A use that no licence in force allows."""

    code = "not_licensed"


class LedgerError(AccordError):
    """A ledger invariant that would break."""

    code = "ledger"


class StoreError(AccordError):
    """The store cannot be opened or migrated."""

    code = "store"


class TooLarge(AccordError):
    """An input larger than Accord accepts (an HTTP request body past ``ACCORD_API_MAX_BODY_MB``: 413)."""

    code = "too_large"


@dataclass(frozen=True)
class Problem:
    """One problem found in an input, reported with every other one at once.

    Attributes:
        file: the file the problem is in (relative to the delivery), or ``""``.
        location: a JSON path (``$.recordings[3].shares``) or ``row 7``.
        field: the field at fault.
        value: the offending value, as text.
        expected: what was expected instead, in words.
        code: a stable machine-readable code for the class of problem.
    """

    file: str
    location: str
    field: str
    value: str
    expected: str
    code: str

    def to_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "file": self.file,
            "location": self.location,
            "field": self.field,
            "value": self.value,
            "expected": self.expected,
        }

    def __str__(self) -> str:
        where = f"{self.file}:{self.location}" if self.file else self.location
        return f"{where}: {self.field}={self.value!r}: {self.expected} [{self.code}]"


@dataclass
class Rejected(AccordError):
    """An input rejected as a whole, with every problem found in it.

    Attributes:
        problems: every problem, in the order found.
    """

    what: str
    problems: list[Problem] = field(default_factory=list)
    code = "rejected"

    def __post_init__(self) -> None:
        super().__init__(self.what)

    def __str__(self) -> str:
        n = len(self.problems)
        return f"{self.what}: {n} problem{'s' if n != 1 else ''} found, nothing was written"


class Unauthenticated(AccordError):
    """A request with no credential, or one that is unknown, revoked or expired (HTTP 401)."""

    code = "unauthenticated"


class Forbidden(AccordError):
    """A request whose role may not do this at all (HTTP 403; another party's object is NotFound instead)."""

    code = "forbidden"


class ReplicationBlocked(AccordError):
    """An output the replication guard would not release: it reproduces a catalog work beyond the threshold."""

    code = "replication_blocked"
