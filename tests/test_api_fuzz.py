"""Property-based fuzzing of every API operation from its own OpenAPI schema (schemathesis, in-process).

Every operation is called with generated valid (and invalid) requests, as the operator and as a
rights holder, on a small registry: no answer is a server error, and every answer has a status,
a content type and a body that the schema declares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
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
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from accord.settings import Settings
from accord.signing import ensure_operator_key
from tests.deliveries import small_catalog, write_delivery

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home: Path = tmp_path_factory.mktemp("fuzz")
    app_settings = Settings(home=home, database_url="")
    store = Store.open(app_settings)
    import_delivery(store, write_delivery(home / "delivery", small_catalog()))
    key, _ = ensure_operator_key(home)
    manifest, _, _ = service.build(store, key, use="train", as_of=store.clock(), territory="GB")
    repository.register_model(store, "m-fuzz", manifest.root, card={}, actor="t")
    keys = {
        "operator": create_key(store, role="operator", party_id="ops")[1],
        "rights_holder": create_key(store, role="rights_holder", party_id="P-LABEL")[1],
    }
    return {"app": create_app(app_settings, store=store), "keys": keys}


@pytest.fixture(scope="module")
def api_schema(fuzz_world: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_world["app"])


FUZZ = settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
FUZZ_INVALID = settings(FUZZ, max_examples=2)  # invalid requests are cheap to refuse but slow to generate


def _fuzz(api_schema: Any, fuzz_world: dict[str, Any], role: str, mode: GenerationMode) -> int:
    """Fuzz every operation in one generation mode; how many operations ran."""
    headers = {"Authorization": f"Bearer {fuzz_world['keys'][role]}"}
    ran = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @(FUZZ if mode is GenerationMode.POSITIVE else FUZZ_INVALID)
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:  # nothing to make invalid: an operation without parameters or body
            continue
        ran += 1
    return ran


@pytest.mark.parametrize(
    ("role", "mode"),
    [
        ("operator", GenerationMode.POSITIVE),
        ("rights_holder", GenerationMode.POSITIVE),
        pytest.param("operator", GenerationMode.NEGATIVE, marks=pytest.mark.slow),  # many more examples rejected
    ],
    ids=["operator-valid", "rights_holder-valid", "operator-invalid"],
)
def test_no_operation_fails_or_breaks_its_schema(
    api_schema: Any, fuzz_world: dict[str, Any], role: str, mode: GenerationMode
) -> None:
    assert _fuzz(api_schema, fuzz_world, role, mode) >= (39 if mode is GenerationMode.POSITIVE else 30)
