"""The portal as its users see it.

Browser tests (marked ``browser``): the app is served by uvicorn on a loopback port over a
small registry on SQLite, then on PostgreSQL (two licensed fiddle tunes, a tiny model trained
once for the session) and Debian's Chromium, headless, is driven through Selenium: a creator
generates a piece and plays it; a label signs in, opts a recording out and sees the model
flagged; a label downloads its statement and its totals match the API. They skip, saying why, only where
Chromium or its driver is not installed.

Page tests (not marked ``browser``, on SQLite and PostgreSQL): sign-in, CSRF on every form,
and another role's or party's pages answering 404, through FastAPI's test client.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from selenium.common.exceptions import StaleElementReferenceException

from accord.api.app import create_app
from accord.api.auth import create_key
from accord.datasets import repository, service
from accord.datasets.proofs import verify_proof
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from accord.settings import Settings
from accord.signing import ensure_operator_key
from accord.web.earnings import PeriodEarnings, bar_chart, money_text
from accord.web.live import browser_missing, chromium, live_server
from tests.deliveries import catalog_agreement, small_catalog, write_delivery
from tests.test_isolation import registry_settings
from tests.test_studio import tiny_model, tune

ALL_USES = ["train", "generate", "remix"]
OPTED = "GBXYZ2600002"


def seed_registry(store: Store, settings: Settings, folder: Path) -> dict[str, str]:
    """Two licensed reels (every use, both sides), their training set; keys for a label, a creator, the operator."""
    doc = small_catalog()
    doc["agreements"].append(catalog_agreement("AGR-P2", "P-PUB2", "publishing"))
    for agreement in doc["agreements"]:
        agreement["uses"] = ALL_USES
    for rec in doc["recordings"]:
        rec["genre"] = "reel"
        rec["media"][0].pop("sha256", None)
    import_delivery(store, write_delivery(folder, doc, {"media/a.mid": tune(1), "media/b.mid": tune(2)}))
    key, _ = ensure_operator_key(settings.home)
    service.build(store, key, use="train", as_of=store.clock(), territory="US")
    outputs.add_creator(store, "ana", "pro", "US", parse_plans(settings.plans))
    outputs.add_creator(store, "bo", "free", "US", parse_plans(settings.plans))
    return {
        "label": create_key(store, role="rights_holder", party_id="P-LABEL")[1],
        "publisher": create_key(store, role="rights_holder", party_id="P-PUB2")[1],
        "creator": create_key(store, role="creator", party_id="ana")[1],
        "other_creator": create_key(store, role="creator", party_id="bo")[1],
        "operator": create_key(store, role="operator", party_id="ops")[1],
    }


# ---------------------------------------------------------------- page tests (test client)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def signed_in(app: Any, secret: str) -> TestClient:
    client = TestClient(app)
    token = csrf_of(client.get("/portal/sign-in").text)
    response = client.post("/portal/sign-in", data={"key": secret, "csrf": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def portal(store: Store, settings: Settings, tmp_path: Path) -> Iterator[dict[str, Any]]:
    keys = seed_registry(store, settings, tmp_path / "delivery")
    app = create_app(settings, store=store)
    yield {"app": app, "keys": keys, "store": store}


def test_sign_in_needs_a_valid_key_and_a_csrf_token(portal: dict[str, Any]) -> None:
    client = TestClient(portal["app"])
    assert client.get("/portal/rights", follow_redirects=False).headers["location"].startswith("/portal/sign-in")
    token = csrf_of(client.get("/portal/sign-in").text)
    refused = client.post("/portal/sign-in", data={"key": portal["keys"]["label"], "csrf": "0" * 64})
    assert refused.status_code == 403 and "csrf" in refused.text
    wrong = client.post("/portal/sign-in", data={"key": "acc_0123456789abcdef_" + "x" * 43, "csrf": token})
    assert wrong.status_code == 401 and "not known" in wrong.text
    elsewhere = {"key": portal["keys"]["label"], "csrf": token, "next": "//evil.example/portal"}
    ok = client.post("/portal/sign-in", data=elsewhere, follow_redirects=False)
    assert ok.headers["location"] == "/portal/rights"  # never sent off the site
    page = client.get("/portal/rights").text
    assert "Test Label (P-LABEL)" in page
    out = client.post("/portal/sign-out", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert out.headers["location"] == "/portal/sign-in"
    assert client.get("/portal/rights", follow_redirects=False).status_code == 303


def test_an_opt_out_needs_the_forms_csrf_token(portal: dict[str, Any]) -> None:
    client = signed_in(portal["app"], portal["keys"]["label"])
    forged = client.post(f"/portal/rights/recordings/{OPTED}/opt-out", data={"csrf": "f" * 64})
    assert forged.status_code == 403
    assert portal["store"].snapshot().optouts == {}
    token = csrf_of(client.get("/portal/rights").text)
    done = client.post(f"/portal/rights/recordings/{OPTED}/opt-out", data={"csrf": token}, follow_redirects=False)
    assert done.status_code == 303 and "?optout=OPT-" in done.headers["location"]
    (optout,) = portal["store"].snapshot().optouts.values()
    assert (optout.party_id, optout.target) == ("P-LABEL", OPTED)


def test_another_roles_pages_answer_404_as_if_they_did_not_exist(portal: dict[str, Any]) -> None:
    keys, app = portal["keys"], portal["app"]
    label, creator = signed_in(app, keys["label"]), signed_in(app, keys["creator"])
    for client, path in ((label, "/portal/studio"), (label, "/portal/operator/models"), (creator, "/portal/rights")):
        assert client.get(path).status_code == 404, path
    assert signed_in(app, keys["operator"]).get("/portal/operator/models").status_code == 200
    # jobs and outputs of another creator, or none, read alike
    assert creator.get("/portal/studio/jobs/JOB-0000000000000000").status_code == 404
    assert creator.get("/portal/studio/outputs/OUT-0000000000000000").status_code == 404


def test_a_rights_holder_sees_and_opts_out_only_what_it_has_standing_on(portal: dict[str, Any]) -> None:
    keys, app = portal["keys"], portal["app"]
    # P-PUB2 publishes only the first song: the second recording is not its to see, nor to opt out
    publisher = signed_in(app, keys["publisher"])
    page = publisher.get("/portal/rights").text
    assert "GBXYZ2600001" in page and OPTED not in page
    assert publisher.get(f"/portal/rights/recordings/{OPTED}").status_code == 404
    token = csrf_of(page)
    assert publisher.post(f"/portal/rights/recordings/{OPTED}/opt-out", data={"csrf": token}).status_code == 404
    assert portal["store"].snapshot().optouts == {}
    label = signed_in(app, keys["label"])
    assert label.get(f"/portal/rights/recordings/{OPTED}").status_code == 200
    assert label.get("/portal/rights/recordings/GBXYZ2699999").status_code == 404


def stored_output(store: Store, output_id: str, creator_id: str) -> outputs.Output:
    """An output as the studio stores it (its files in the media store), without running a model."""
    files = {
        kind: {"sha256": store.media.put_bytes(data), "name": f"{output_id}.{ext}"}
        for kind, ext, data in (("midi", "mid", tune(4)), ("audio", "wav", b"RIFF-test"), ("pianoroll", "png", b"PNG"))
    }
    credential = {"guard": {"status": "clear"}, "attribution": {"status": "pending"}}
    if repository.find_model(store, "m-test") is None:
        (manifest,) = repository.list_manifests(store)
        repository.register_model(store, "m-test", manifest.root, card={}, actor="tests")
    prompt = {"style": "reel", "bars": 4}
    output = outputs.Output(output_id, "m-test", creator_id, store.clock(), prompt, 1, files, credential)
    outputs.save_output(store, output)
    return output


def test_downloads_follow_the_plan_and_are_usage_events(portal: dict[str, Any]) -> None:
    store, keys, app = portal["store"], portal["keys"], portal["app"]
    stored_output(store, "OUT-ANA", "ana")
    stored_output(store, "OUT-BO", "bo")
    ana = signed_in(app, keys["creator"])
    page = ana.get("/portal/studio/outputs/OUT-ANA")
    assert page.status_code == 200 and "0 of 30 downloads used" in page.text
    got = ana.post("/portal/studio/outputs/OUT-ANA/download", data={"csrf": csrf_of(page.text)})
    assert got.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(got.content)) as zf:
        assert sorted(zf.namelist()) == ["OUT-ANA/OUT-ANA.mid", "OUT-ANA/OUT-ANA.png", "OUT-ANA/OUT-ANA.wav"]
    assert ana.get("/portal/studio/outputs/OUT-BO").status_code == 404  # another creator's output
    assert ana.post("/portal/studio/outputs/OUT-BO/download", data={"csrf": csrf_of(page.text)}).status_code == 404
    bo = signed_in(app, keys["other_creator"])
    token = csrf_of(bo.get("/portal/studio/outputs/OUT-BO").text)
    refused = bo.post("/portal/studio/outputs/OUT-BO/download", data={"csrf": token})
    assert refused.status_code == 200 and "streams only" in refused.text  # the free plan: shown why, no file
    assert bo.get("/portal/studio/outputs/OUT-BO/audio").status_code == 200  # streaming records nothing
    played = bo.post("/v1/outputs/OUT-BO/plays", headers={"X-CSRF-Token": token, "Idempotency-Key": "pl-1"})
    assert played.json() == {"output_id": "OUT-BO", "recorded": True}  # as the player posts it
    assert [(e["output_id"], e["kind"]) for e in outputs.events(store)] == [("OUT-ANA", "download"), ("OUT-BO", "play")]


def test_the_earnings_chart_stacks_each_periods_pools_to_scale() -> None:
    periods = [
        PeriodEarnings("2026-10", "EUR", {"training": 3_000_000, "output": 1_000_000}, 4_000_000, 0, 5),
        PeriodEarnings("2026-11", "EUR", {"training": 2_000_000}, 6_000_000, 0, 2),
    ]
    svg = bar_chart(periods, height=240)
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([0-9.]+)"', svg)]
    assert len(heights) == 3 and heights[0] + heights[1] == pytest.approx(190.0)  # the tallest bar fills the plot
    assert heights[2] == pytest.approx(heights[0] * 2 / 3, abs=0.1)
    assert "2026-10 output: EUR 1.00" in svg and bar_chart([]) == ""
    assert money_text(-1_234_567_891, "EUR") == "EUR -1,234.57"


# ---------------------------------------------------------------- browser tests (Chromium)

browser = pytest.mark.skipif(bool(browser_missing()), reason=browser_missing() or "chromium present")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[dict[str, Any]]:
    """A served portal over a seeded registry (SQLite, then PostgreSQL) with a tiny model trained for a few steps."""
    if browser_missing():
        pytest.skip(browser_missing())
    home = tmp_path_factory.mktemp(f"portal-home-{request.param}")
    settings = registry_settings(request.param, home, request, sqlite_template)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACCORD_HOME", str(home))
        mp.setenv("ACCORD_DATABASE_URL", settings.database_url)
        store = Store.open(settings)
        keys = seed_registry(store, settings, home / "delivery")
        (manifest,) = repository.list_manifests(store)
        model, _ = tiny_model(store, settings, manifest.root, tmp_path_factory)  # trained once per session
        downloads = home / "downloads"
        with live_server(settings, store) as base:
            driver = chromium(downloads=downloads)
            try:
                yield {
                    "base": base,
                    "driver": driver,
                    "keys": keys,
                    "store": store,
                    "model": model.model_id,
                    "downloads": downloads,
                    "settings": settings,
                }
            finally:
                driver.quit()
        store.close()


def sign_in(live: dict[str, Any], who: str) -> Any:
    driver = live["driver"]
    driver.delete_all_cookies()
    driver.get(f"{live['base']}/portal/sign-in")
    driver.find_element("id", "key").send_keys(live["keys"][who])
    driver.find_element("id", "sign-in").click()
    # the click only submits the form: wait for the redirect that carries the session cookie, or the
    # next driver.get can overtake it and land on the sign-in page again
    wait_for(lambda: "/portal/sign-in" not in driver.current_url, 15, f"{who} to be signed in")
    return driver


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@browser
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.xdist_group("browser")
def test_a_creator_generates_a_piece_and_plays_it(live: dict[str, Any]) -> None:
    driver = sign_in(live, "creator")
    assert driver.current_url.endswith("/portal/studio")
    driver.find_element("id", "bars").clear()
    driver.find_element("id", "bars").send_keys("4")
    driver.find_element("id", "generate").click()
    # the request returns at once with the job's page (the click only submits: wait for the navigation)
    wait_for(lambda: "/portal/studio/jobs/" in driver.current_url, 15, "the job page")

    def finished() -> bool:
        if "/portal/studio/outputs/" in driver.current_url:
            return True
        failed = driver.find_elements("css selector", '#job-status[data-status="failed"]')
        assert not failed, driver.find_element("id", "job-error").text
        return False

    wait_for(finished, 180, "the job page to open the piece")
    output_id = driver.current_url.rsplit("/", 1)[1]
    player = driver.find_element("id", "player")
    driver.execute_script("arguments[0].muted = true; return arguments[0].play();", player)
    wait_for(lambda: driver.execute_script("return arguments[0].readyState", player) >= 2, 20, "audio data")
    wait_for(lambda: driver.execute_script("return arguments[0].currentTime", player) > 0, 20, "playback to advance")
    roll = driver.find_element("css selector", "img.pianoroll")
    assert driver.execute_script("return arguments[0].naturalWidth", roll) > 0
    assert driver.find_element("id", "guard-status").text
    kinds = wait_for(
        lambda: (
            {e["kind"] for e in outputs.events(live["store"], output_id=output_id)} >= {"generation", "play"}
            and {e["kind"] for e in outputs.events(live["store"], output_id=output_id)}
        ),
        10,
        "the play to be recorded as a usage event",
    )
    assert "play" in kinds


@browser
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.xdist_group("browser")
def test_a_label_signs_in_opts_a_recording_out_and_sees_the_model_flagged(live: dict[str, Any]) -> None:
    driver = sign_in(live, "label")
    assert driver.current_url.endswith("/portal/rights")
    row = driver.find_element("css selector", f'tr[data-isrc="{OPTED}"]')
    assert "✓ train" in row.text
    row.find_element("link text", OPTED).click()
    selector = f'tr.model-row[data-model="{live["model"]}"]'
    wait_for(lambda: driver.find_elements("css selector", selector), 15, "the recording's page")
    model_row = driver.find_element("css selector", selector)
    assert model_row.get_attribute("data-flagged") == "no" and "serving" in model_row.text
    driver.execute_script("window.confirm = () => true;")
    driver.find_element("id", "opt-out").click()
    wait_for(lambda: driver.find_elements("id", "opted-out"), 20, "the opt-out notice")
    model_row = driver.find_element("css selector", f'tr.model-row[data-model="{live["model"]}"]')
    assert model_row.get_attribute("data-flagged") == "yes"
    assert "flagged" in model_row.text and "flagged for train" in model_row.text
    assert "opted_out" in driver.find_element("tag name", "main").text
    driver.get(f"{live['base']}/portal/rights/opt-outs")
    assert live["model"] in driver.find_element("id", "flagged").text


@browser
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.xdist_group("browser")
def test_a_label_downloads_its_proofs_and_they_verify_against_the_training_set(live: dict[str, Any]) -> None:
    driver = sign_in(live, "label")
    driver.get(f"{live['base']}/portal/rights/models")
    driver.find_element("link text", "Download proofs (.zip)").click()
    (manifest,) = repository.list_manifests(live["store"])
    name = f"proofs-P-LABEL-{manifest.root[:12]}.zip"
    path = wait_for(lambda: next(iter(live["downloads"].glob(name)), None), 20, f"{name} to download")
    with zipfile.ZipFile(path) as zf:
        proofs = {n: json.loads(zf.read(n)) for n in zf.namelist() if n.endswith(".proof.json")}
    assert sorted(p["isrc"] for p in proofs.values()) == ["GBXYZ2600001", OPTED]
    public_key = ensure_operator_key(live["settings"].home)[0].public_hex
    for proof in proofs.values():
        verdict = verify_proof(proof, manifest.root, public_key_hex=public_key, isrc=proof["isrc"])
        assert verdict.valid and verdict.kind == "inclusion", verdict


@browser
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.xdist_group("browser")
def test_a_label_downloads_its_statement_and_the_totals_match_the_api(live: dict[str, Any]) -> None:
    from accord.royalties.periods import period_of
    from accord.royalties.usage import ingest_events

    store, settings = live["store"], live["settings"]
    if not outputs.list_outputs(store):  # the creator's test made one; alone, make one to be paid for
        stored_output(store, "OUT-PAID", "ana")
    period = period_of(store.clock())
    revenue = {"event_id": "rev-browser-1", "kind": "revenue", "timestamp": store.clock().isoformat()}
    revenue |= {"amount": "1000.00", "currency": "EUR", "period": period, "source": "subscription", "territory": "US"}
    paid_for = outputs.list_outputs(store)[0]  # a month's streams of it: the usage the money follows
    stream = {"event_id": "stream-browser-1", "kind": "stream", "timestamp": store.clock().isoformat()}
    stream |= {"creator": paid_for.creator_id, "output_id": paid_for.output_id, "model_id": paid_for.model_id}
    stream |= {"territory": "US"}
    ingest_events(store, settings, [revenue, stream], actor="tests", source="tests")
    # the operator runs the period and closes it in the portal
    driver = sign_in(live, "operator")
    driver.get(f"{live['base']}/portal/operator/royalties")
    driver.find_element("id", "run-period").click()
    wait_for(lambda: driver.find_elements("css selector", f'tr[data-period="{period}"]'), 15, "the period's row")
    row = driver.find_element("css selector", f'tr[data-period="{period}"]')
    assert "draft" in row.text and "EUR 1,000.00" in row.text
    driver.execute_script("window.confirm = () => true;")
    row.find_element("css selector", "button.danger").click()

    def closed() -> bool:
        rows = driver.find_elements("css selector", f'tr[data-period="{period}"]')
        try:
            return bool(rows) and "closed" in rows[0].text
        except StaleElementReferenceException:  # the page was replaced while reading it
            return False

    wait_for(closed, 15, f"period {period} to show as closed")
    driver.get(f"{live['base']}/portal/operator/ledger")
    assert driver.find_element("id", "ledger-verdict").text == "verified"
    # the label sees the period, downloads its statement, and it says what the API says
    driver = sign_in(live, "label")
    driver.get(f"{live['base']}/portal/rights/earnings")
    row = driver.find_element("css selector", f'tr[data-period="{period}"][data-currency="EUR"]')
    shown = int(row.find_element("css selector", "td.total").get_attribute("data-micros"))
    assert driver.find_element("css selector", "svg.chart")
    row.find_element("css selector", "a.statement-csv").click()
    name = f"statement-P-LABEL-{period}-EUR.csv"
    path = wait_for(lambda: next(iter(live["downloads"].glob(name)), None), 20, f"{name} to download")
    with path.open(newline="") as f:
        lines = list(csv.DictReader(f))
    assert {line["party_id"] for line in lines} == {"P-LABEL"}
    downloaded = sum(int(line["amount_micros"]) for line in lines)
    api = httpx.get(
        f"{live['base']}/v1/statements",
        params={"period": period},
        headers={"Authorization": f"Bearer {live['keys']['label']}"},
    )
    assert api.status_code == 200, api.text
    (doc,) = [d for d in api.json()["items"] if d["currency"] == "EUR"]
    assert downloaded == shown == doc["total_income"]["micros"] > 0
