"""A live portal for browsers: the app served by uvicorn on a free loopback port, in a thread,
with a job worker beside it (the studio's generations run there, as an ``accord worker`` would run
them), and a headless Chromium to look at it (the browser tests and ``make screenshots`` use both).

Chromium and its driver are Debian's (``scripts/system-deps`` installs them); Selenium is
given both paths explicitly, so Selenium Manager never tries to download anything.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from accord.registry.store import Store
from accord.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")


def browser_missing() -> str:
    """Why no headless browser can run here, or ``""`` when Chromium and its driver are installed."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        why = "scripts/system-deps installs Debian's chromium and chromium-driver"
        return f"{' and '.join(missing)} not installed ({why})"
    return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(
    settings: Settings, store: Store | None = None, *, timeout: float = 30.0, job_worker: bool = True
) -> Iterator[str]:
    """Serve ``create_app(settings)`` (API and portal) on a free loopback port, with a job worker on a
    thread beside it unless ``job_worker`` is false; yields its base URL."""
    from accord.api.app import create_app
    from accord.jobs.worker import WorkerThread

    port = free_port()
    app = create_app(settings, store=store)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="accord-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            msg = f"the portal did not start on 127.0.0.1:{port} within {timeout:g} s"
            raise RuntimeError(msg)
        time.sleep(0.05)
    try:
        if job_worker:
            with WorkerThread(app.state.store, settings):
                yield f"http://127.0.0.1:{port}"
        else:
            yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)


def chromium(*, width: int = 1360, height: int = 900, downloads: Path | None = None) -> Any:
    """A headless Chromium driven by Selenium (Debian's binary and driver, nothing downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--window-size={width},{height}", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    if downloads is not None:
        downloads.mkdir(parents=True, exist_ok=True)
        options.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    if downloads is not None:  # headless Chromium saves downloads only where it is told to
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver
