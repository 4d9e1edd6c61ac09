"""Property-based fuzzing of every API operation from its own OpenAPI schema (schemathesis, in-process).

Every operation is called with generated valid (and invalid) requests, as the operator, a rights
holder and a creator, on a small registry on SQLite and on PostgreSQL: no answer is a server error,
every answer has a status, a content type and a body that the schema declares, and every refusal
is the one error shape ``{"error": {"code", "message", "field"}}``. ``ACCORD_API_FUZZ_EXAMPLES``
(default 10) sets the valid examples per operation and role; CI's default keeps each backend near 60 s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from accord.api.app import create_app
from accord.api.auth import create_key
from accord.datasets import repository, service
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from accord.signing import ensure_operator_key
from tests.deliveries import small_catalog, write_delivery
from tests.test_isolation import registry_settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fuzz_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> dict[str, Any]:
    home: Path = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    app_settings = registry_settings(request.param, home, request, sqlite_template)
    store = Store.open(app_settings, migrate=False)
    import_delivery(store, write_delivery(home / "delivery", small_catalog()))
    key, _ = ensure_operator_key(home)
    manifest, _, _ = service.build(store, key, use="train", as_of=store.clock(), territory="GB")
    repository.register_model(store, "m-fuzz", manifest.root, card={}, actor="t")
    outputs.add_creator(store, "c-fuzz", "pro", "GB", parse_plans(app_settings.plans))
    keys = {
        "operator": create_key(store, role="operator", party_id="ops")[1],
        "rights_holder": create_key(store, role="rights_holder", party_id="P-LABEL")[1],
        "creator": create_key(store, role="creator", party_id="c-fuzz")[1],
    }
    return {"app": create_app(app_settings, store=store), "keys": keys}


@pytest.fixture(scope="module")
def api_schema(fuzz_world: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_world["app"])


EXAMPLES = int(os.environ.get("ACCORD_API_FUZZ_EXAMPLES", "10"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
)
FUZZ_INVALID = settings(FUZZ, max_examples=2)  # invalid requests are cheap to refuse but slow to generate


def is_error_body(response: Any) -> bool:
    """The one error shape: a JSON object whose ``error`` holds a code and a message (and the field at fault)."""
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and bool(error["code"])
        and isinstance(error.get("message"), str)
        and bool(error["message"])
        and "field" in error
    )


def _fuzz(api_schema: Any, fuzz_world: dict[str, Any], role: str, mode: GenerationMode) -> tuple[int, int]:
    """Fuzz every operation in one generation mode: (operations that ran, operations in the schema)."""
    headers = {"Authorization": f"Bearer {fuzz_world['keys'][role]}"}
    ran = total = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        total += 1

        @(FUZZ if mode is GenerationMode.POSITIVE else FUZZ_INVALID)
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            if response.status_code >= 400:
                where = f"{case.method} {case.formatted_path} -> {response.status_code}"
                assert is_error_body(response), f"{where}: not the error shape: {response.text[:300]}"

        try:
            run()
        except Unsatisfiable:  # nothing to make invalid: an operation without parameters or body
            continue
        ran += 1
    return ran, total


@pytest.mark.parametrize(
    ("role", "mode"),
    [
        ("operator", GenerationMode.POSITIVE),
        ("rights_holder", GenerationMode.POSITIVE),
        ("creator", GenerationMode.POSITIVE),
        pytest.param("operator", GenerationMode.NEGATIVE, marks=pytest.mark.slow),  # many more examples rejected
    ],
    ids=["operator-valid", "rights_holder-valid", "creator-valid", "operator-invalid"],
)
def test_no_operation_fails_or_breaks_its_schema(
    api_schema: Any, fuzz_world: dict[str, Any], role: str, mode: GenerationMode
) -> None:
    ran, total = _fuzz(api_schema, fuzz_world, role, mode)
    assert total >= 60, "the schema lost operations"
    if mode is GenerationMode.POSITIVE:
        assert ran == total  # every operation, none skipped
    else:
        assert ran >= total // 2  # those without parameters or a body have nothing to make invalid


def test_a_manifest_reference_that_is_not_hex_is_refused_naming_the_field(fuzz_world: dict[str, Any]) -> None:
    """Found by the fuzzer on PostgreSQL: a NUL in a manifest reference was a server error (text cannot hold NUL)."""
    headers = {"Authorization": f"Bearer {fuzz_world['keys']['operator']}"}
    with TestClient(fuzz_world["app"]) as client:
        for ref in ("0000000\x00", "abcdef1_", "abcdef12%"):
            r = client.post("/v1/models", headers=headers, json={"model_id": "m-bad-ref", "manifest": ref})
            assert r.status_code == 422, (ref, r.status_code, r.text)
            assert r.json()["error"]["field"] == "manifest"
