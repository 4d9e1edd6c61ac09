"""Screenshots of the portal's main pages, per role, for the README (``make screenshots``).

Seeds a fresh, throw-away ACCORD_HOME with demo-like data — a small cut of the demo catalog
(public-domain tunes and chorales, fictional rights), its consented training set, a tiny model
trained for a minute, a creator with generated pieces, one opt-out that flags the model —
serves the portal on a loopback port and photographs each page with headless Chromium into
docs/screenshots/. Run from the repository root:

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--pieces 12] [--steps 80]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from accord.api.auth import create_key
from accord.datasets import repository, service
from accord.demo import build_demo_delivery
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.outputs.studio import Prompt, generate_output, train_on_manifest
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from accord.royalties.periods import period_of
from accord.settings import Settings
from accord.signing import ensure_operator_key
from accord.web.live import browser_missing, chromium, live_server

LABEL = "P-KESTREL"  # the demo label with items in and out of the training set
CREATOR = "demo-creator"
TERRITORY = "US"
console = Console(stderr=True)


def seed(settings: Settings, *, pieces: int, steps: int) -> dict[str, Any]:
    """A small demo registry; returns the keys and the ids the pages need."""
    store = Store.open(settings)
    key, _ = ensure_operator_key(settings.home)
    dest = settings.cache_dir / "demo-delivery"
    build_demo_delivery(dest, cache_dir=settings.cache_dir / "demo-pieces", limit_per_collection=pieces, workers=1)
    import_delivery(store, dest, actor="demo")
    manifest, _, _ = service.build(store, key, use="train", as_of=store.clock(), territory=TERRITORY, actor="demo")
    model, _ = train_on_manifest(store, settings, manifest.root, preset="tiny", steps=steps, seed=0)
    for licensor in service.status_of_model(store, model.model_id, store.clock()).pending_approvals:
        repository.record_approval(store, model.model_id, licensor, approve=True, by=licensor, note="demo approval")
    outputs.add_creator(store, CREATOR, "pro", TERRITORY, parse_plans(settings.plans))
    styles = model.card.get("tokenizer", {}).get("styles", []) or ["reel"]
    made = [
        generate_output(
            store,
            settings,
            model_id=model.model_id,
            creator_id=CREATOR,
            prompt=Prompt(style=styles[n % len(styles)], bars=8),
            seed=n,
        ).output.output_id
        for n in range(3)
    ]
    close_demo_periods(store, settings, made)
    label, attributed = most_credited(store, made, LABEL)
    mine = sorted(i.isrc for i in manifest.items if label in i.standing)
    keys = {
        "label": create_key(store, role="rights_holder", party_id=label, label="screenshots")[1],
        "creator": create_key(store, role="creator", party_id=CREATOR, label="screenshots")[1],
        "operator": create_key(store, role="operator", party_id="operator", label="screenshots")[1],
    }
    return {
        "store": store,
        "keys": keys,
        "outputs": made,
        "attributed": attributed,
        "model": model.model_id,
        "isrc": mine[0] if mine else "",
        "period": period_of(store.clock()),
    }


def close_demo_periods(store: Store, settings: Settings, output_ids: list[str]) -> None:
    """A simulated month: plays of the outputs and subscription revenue, the period run and closed."""
    from datetime import timedelta

    from accord.royalties.periods import period_bounds
    from accord.royalties.run import close_period, run_period
    from accord.royalties.usage import ingest_events

    for period, amount in ((period_of(store.clock()), "1250.00"),):
        at = min(period_bounds(period)[1] - timedelta(hours=1), store.clock())
        events: list[dict[str, object]] = [
            {"event_id": f"demo-rev-{period}", "kind": "revenue", "timestamp": at.isoformat(), "amount": amount}
            | {"currency": "EUR", "period": period, "source": "subscription", "territory": TERRITORY}
        ]
        for n, output_id in enumerate(output_ids * 3):
            output = outputs.get_output(store, output_id)
            events.append(
                {"event_id": f"demo-play-{period}-{n}", "kind": "play", "timestamp": at.isoformat()}
                | {"creator": CREATOR, "output_id": output_id, "model_id": output.model_id, "territory": TERRITORY}
            )
        ingest_events(store, settings, events, actor="demo", source="demo")
        run_period(store, settings, period, actor="demo")
        close_period(store, settings, period, actor="demo")


def shoot(driver: Any, url: str | None, path: Path, *, width: int = 1360) -> None:
    """The whole page (up to 2,400 px tall) at ``width``."""
    if url is not None:
        driver.get(url)
    time.sleep(0.4)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    metrics = {"width": width, "height": min(max(height, 600), 1800), "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    time.sleep(0.2)
    driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    console.print(f"  {path}")


def most_credited(store: Store, output_ids: list[str], fallback: str) -> tuple[str, str]:
    """The master-side holder the outputs credit most, and that output (the attributed-output page)."""
    best: tuple[int, str, str] = (0, fallback, "")
    for output_id in output_ids:
        att = outputs.get_output(store, output_id).credential.get("attribution") or {}
        for h in (att.get("holders") or {}).get("master", []):
            best = max(best, (h["weight_ppm"], h["party_id"], output_id))
    return best[1], best[2]


def sign_in(driver: Any, base: str, secret: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/portal/sign-in")
    driver.find_element("id", "key").send_keys(secret)
    driver.find_element("id", "sign-in").click()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--pieces", type=int, default=16, help="demo pieces per collection")
    parser.add_argument("--steps", type=int, default=80, help="training steps of the tiny model")
    args = parser.parse_args()
    why = browser_missing()
    if why:
        console.print(f"[red]screenshots:[/] {why}")
        return 1
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="accord-screens-") as tmp:
        settings = Settings(home=Path(tmp))
        console.print("seeding a small demo registry ...")
        data = seed(settings, pieces=args.pieces, steps=args.steps)
        keys, out = data["keys"], args.out
        with live_server(settings, data["store"]) as base:
            driver = chromium()
            try:
                console.print("photographing:")
                driver.get(f"{base}/portal/sign-in")
                shoot(driver, f"{base}/portal/sign-in", out / "sign-in.png")
                sign_in(driver, base, keys["creator"])
                shoot(driver, f"{base}/portal/studio", out / "creator-studio.png")
                driver.find_element("id", "generate").click()
                shoot(driver, None, out / "creator-generating.png")
                deadline = time.monotonic() + 600
                while "/portal/studio/outputs/" not in driver.current_url and time.monotonic() < deadline:
                    time.sleep(0.5)
                shoot(driver, None, out / "creator-output.png")
                sign_in(driver, base, keys["label"])
                shoot(driver, f"{base}/portal/rights", out / "rights-catalog.png")
                if data["attributed"]:
                    shoot(
                        driver,
                        f"{base}/portal/rights/outputs/{data['attributed']}",
                        out / "rights-attributed-output.png",
                    )
                if data["isrc"]:
                    driver.get(f"{base}/portal/rights/recordings/{data['isrc']}")
                    driver.execute_script("window.confirm = () => true;")
                    driver.find_element("id", "opt-out").click()
                    time.sleep(0.5)
                    shoot(driver, None, out / "rights-recording-opted-out.png")
                shoot(driver, f"{base}/portal/rights/models", out / "rights-models.png")
                shoot(driver, f"{base}/portal/rights/earnings", out / "rights-earnings.png")
                sign_in(driver, base, keys["operator"])
                shoot(driver, f"{base}/portal/operator", out / "operator-overview.png")
                shoot(driver, f"{base}/portal/operator/models", out / "operator-models.png")
                period = data["period"]
                shoot(driver, f"{base}/portal/operator/royalties?period={period}", out / "operator-royalties.png")
                shoot(driver, f"{base}/portal/operator/ledger", out / "operator-ledger.png")
            finally:
                driver.quit()
        data["store"].close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
