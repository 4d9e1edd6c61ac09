"""The Ray executor honours the executor contract and gives byte-identical results to the local pool.

One local Ray (two CPUs, no dashboard) is started for the whole module: starting Ray costs seconds,
so every test here shares it (see :func:`ray_cluster`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from accord.attribution.guard.audio import AudioSource, fingerprint_all, fingerprint_source
from accord.demo import build_demo_delivery
from accord.errors import AccordError, ValidationError
from accord.execution import EXECUTORS, LocalPoolExecutor, get_executor
from accord.execution_ray import RayExecutor, start_ray
from accord.media.fingerprint import SAMPLE_RATE, wav_bytes
from tests.test_fingerprint import clip


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A Ray on this machine with two CPUs, shut down after the module (one start for every test)."""
    start_ray("", workers=2)
    assert ray.cluster_resources().get("CPU") == 2
    yield
    ray.shutdown()


def square(x: int) -> int:
    return x * x


def refuse_seven(x: int) -> int:
    if x == 7:
        msg = f"item={x}: seven is refused"
        raise ValidationError(msg, field="item", value=x)
    return x


def test_ray_is_a_registered_backend_chosen_by_accord_executor(
    ray_cluster: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "ray" in EXECUTORS
    monkeypatch.setenv("ACCORD_EXECUTOR", "ray")
    assert isinstance(get_executor(workers=2), RayExecutor)
    monkeypatch.setenv("ACCORD_EXECUTOR", "local")
    assert isinstance(get_executor(workers=2), LocalPoolExecutor)
    with pytest.raises(ValidationError, match="executor='spark': not a known executor; expected one of"):
        get_executor("spark", workers=2)
    monkeypatch.setenv("ACCORD_EXECUTOR", "spark")  # refused where the settings are read, naming the variable
    with pytest.raises(AccordError, match="ACCORD_EXECUTOR='spark': 'spark' is not a known executor; expected one of"):
        get_executor(workers=2)


@pytest.mark.parametrize("chunksize", [1, 3, 50])
def test_results_come_back_in_input_order_with_one_progress_call_per_item(ray_cluster: None, chunksize: int) -> None:
    items = list(range(23))
    calls: list[tuple[int, int]] = []
    got = RayExecutor(2, "").map(square, items, on_done=lambda d, t: calls.append((d, t)), chunksize=chunksize)
    assert got == [x * x for x in items]
    assert calls == [(n, 23) for n in range(1, 24)]


def test_an_empty_map_starts_nothing_and_returns_nothing(ray_cluster: None) -> None:
    assert RayExecutor(2, "").map(square, []) == []


def test_an_exception_in_a_task_reaches_the_caller_as_itself_with_its_message(ray_cluster: None) -> None:
    with pytest.raises(ValidationError, match=r"^item=7: seven is refused$") as raised:
        RayExecutor(2, "").map(refuse_seven, list(range(20)), chunksize=2)
    assert raised.value.field == "item" and raised.value.value == 7


def test_bad_arguments_are_refused_in_one_line(ray_cluster: None) -> None:
    with pytest.raises(ValidationError, match="workers=-1: expected 0"):
        RayExecutor(-1, "")
    with pytest.raises(ValidationError, match="chunksize=0: expected a positive number"):
        RayExecutor(2, "").map(square, [1, 2], chunksize=0)


def test_a_ray_address_that_is_neither_auto_nor_ray_client_is_refused() -> None:
    with pytest.raises(
        ValidationError, match=r"ACCORD_RAY_ADDRESS='http://x:1': 'http://x:1' is not a Ray address; expected auto"
    ):
        start_ray("http://x:1")


def _clips(folder: Path, n: int) -> list[tuple[AudioSource, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for i in range(n):
        path = folder / f"{i}.wav"
        path.write_bytes(wav_bytes(clip(40 + i)[: 8 * SAMPLE_RATE], SAMPLE_RATE))
        sources.append((AudioSource(f"ISRC{i}", f"Clip {i}", f"{i:064x}", "audio"), path))
    return sources


def test_catalog_fingerprints_on_ray_are_byte_identical_to_the_local_pool(ray_cluster: None, tmp_path: Path) -> None:
    sources = _clips(tmp_path / "media", 6)
    local = LocalPoolExecutor(1).map(fingerprint_source, [(s, p, tmp_path / "local") for s, p in sources])
    on_ray = RayExecutor(2, "").map(fingerprint_source, [(s, p, tmp_path / "ray") for s, p in sources], chunksize=2)
    assert len(on_ray) == len(local) == 6
    for a, b in zip(local, on_ray, strict=True):
        assert a.hashes.tobytes() == b.hashes.tobytes() and a.times.tobytes() == b.times.tobytes()
        assert a.seconds == b.seconds
    cached = sorted(p.name for p in (tmp_path / "ray").rglob("*.npz"))
    assert cached == sorted(p.name for p in (tmp_path / "local").rglob("*.npz")) and len(cached) == 6


def test_the_guard_fingerprint_stage_runs_on_the_executor_accord_executor_names(
    ray_cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = _clips(tmp_path / "media", 6)
    serial = fingerprint_all(sources, tmp_path / "serial", workers=1)
    monkeypatch.setenv("ACCORD_EXECUTOR", "ray")
    seen: list[tuple[str, int, int]] = []
    on_ray = fingerprint_all(sources, tmp_path / "ray", workers=2, progress=lambda s, d, t: seen.append((s, d, t)))
    assert [(f.hashes.tobytes(), f.times.tobytes()) for f in on_ray] == [
        (f.hashes.tobytes(), f.times.tobytes()) for f in serial
    ]
    assert seen[-1] == ("fingerprint catalog audio", 6, 6)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_demo_catalog_built_on_ray_is_byte_identical_to_the_one_built_locally(
    ray_cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = build_demo_delivery(
        tmp_path / "local", cache_dir=tmp_path / "cache-local", limit_per_collection=2, workers=1
    )
    monkeypatch.setenv("ACCORD_EXECUTOR", "ray")
    on_ray = build_demo_delivery(tmp_path / "ray", cache_dir=tmp_path / "cache-ray", limit_per_collection=2, workers=2)
    assert on_ray.recordings == local.recordings > 0
    assert _tree(tmp_path / "ray") == _tree(tmp_path / "local")
