"""The operator's pages: deliveries, training sets, models and their taint status, royalty
periods (run, review, close) and ledger verification, and the audit logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from accord.api.auth import Principal, Role, audit, audit_events
from accord.datasets import repository, service
from accord.web import earnings, views
from accord.web.deps import PortalRoute, render, settings_of, store_of
from accord.web.session import CSRF, signed_in

router = APIRouter(prefix="/portal/operator", route_class=PortalRoute, include_in_schema=False)
Operator = Annotated[Principal, Depends(signed_in(Role.OPERATOR))]


@router.get("")
def overview(request: Request, me: Operator) -> Response:
    store = store_of(request)
    catalog = store.snapshot()
    report = service.audit(store, store.clock())
    return render(
        request,
        "operator/overview.html",
        {
            "counts": {
                "parties": len(catalog.parties),
                "recordings": len(catalog.recordings),
                "works": len(catalog.works),
                "agreements": len(catalog.agreements),
                "opt-outs": len(catalog.optouts),
                "deliveries": len(store.deliveries()),
                "training sets": len(report.manifests),
                "models": len(report.models),
            },
            "blocked": [m for m in report.models if m.blocked_uses],
            "events": store.audit_log(15),
        },
    )


@router.get("/deliveries")
def deliveries_page(request: Request, me: Operator) -> Response:
    return render(request, "operator/deliveries.html", {"deliveries": list(reversed(store_of(request).deliveries()))})


@router.get("/manifests")
def manifests_page(request: Request, me: Operator) -> Response:
    store = store_of(request)
    models = repository.list_models(store)
    rows = [(m, [x.model_id for x in models if x.manifest_root == m.root]) for m in repository.list_manifests(store)]
    return render(request, "operator/manifests.html", {"manifests": list(reversed(rows))})


@router.get("/models")
def models_page(request: Request, me: Operator) -> Response:
    store = store_of(request)
    models = views.models_for(store, me, store.clock())
    return render(
        request, "operator/models.html", {"models": models, "retraining": request.query_params.get("retraining")}
    )


@router.post("/models/{model_id}/retrain", dependencies=[CSRF])
def models_retrain(request: Request, me: Operator, model_id: str) -> Response:
    """Queue ``accord model retrain`` for a worker (the API's ``POST /v1/models/{id}/retrainings``)."""
    from accord.jobs.queue import submit

    store = store_of(request)
    repository.get_model(store, model_id)
    job = submit(store, "retraining", me.party_id, {"model_id": model_id, "actor": me.party_id})
    audit(store, me, "retraining.submit", "job", job.job_id, {"model_id": model_id, "via": "portal"})
    return RedirectResponse(f"/portal/operator/models?retraining={job.job_id}", status_code=303)


@router.get("/royalties")
def royalties_page(request: Request, me: Operator, period: str = "") -> Response:
    store, settings = store_of(request), settings_of(request)
    return render(request, "operator/royalties.html", earnings.operator_view(store, settings, period))


@router.post("/royalties/run", dependencies=[CSRF])
def royalties_run(request: Request, me: Operator, period: Annotated[str, Form()]) -> Response:
    store = store_of(request)
    run_id = earnings.run_period(store, settings_of(request), period, actor=me.party_id)
    audit(store, me, "royalties.run", "period", period, {"run": run_id, "via": "portal"})
    return RedirectResponse(f"/portal/operator/royalties?period={period}", status_code=303)


@router.post("/royalties/close", dependencies=[CSRF])
def royalties_close(request: Request, me: Operator, period: Annotated[str, Form()]) -> Response:
    store = store_of(request)
    earnings.close_period(store, settings_of(request), period, actor=me.party_id)
    audit(store, me, "royalties.close", "period", period, {"via": "portal"})
    return RedirectResponse(f"/portal/operator/royalties?period={period}", status_code=303)


@router.get("/ledger")
def ledger_page(request: Request, me: Operator) -> Response:
    check = earnings.verify_ledger(store_of(request), settings_of(request))
    return render(request, "operator/ledger.html", {"check": check})


@router.get("/audit")
def audit_page(request: Request, me: Operator) -> Response:
    store = store_of(request)
    api = audit_events(store, limit=100000)[-100:]
    return render(request, "operator/audit.html", {"registry": store.audit_log(100), "api": list(reversed(api))})
