"""The autocast dtype a device trains and evaluates in: bf16 only where the hardware does it natively."""

from __future__ import annotations

import functools
from pathlib import Path

import torch


@functools.cache
def native_cpu_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX-BF16, from ``/proc/cpuinfo``).

    oneDNN also "supports" bf16 on plain AVX-512 by emulation, which is slower than fp32 (measured
    2026-12-03 on a 2-core Xeon without AVX512-BF16: the mini preset 2.7x slower per step in bf16).
    Read once per process."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the hardware does it natively (CUDA with bf16, CPUs with AVX512-BF16/AMX), else fp32."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type == "cpu":
        if not native_cpu_bf16():
            return torch.float32
        try:
            supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
            with torch.autocast("cpu", dtype=torch.bfloat16):
                torch.ones(2, 2) @ torch.ones(2, 2)
        except (RuntimeError, AttributeError):
            return torch.float32
        return torch.bfloat16 if supported else torch.float32
    return torch.float32
