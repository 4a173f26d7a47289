"""What the machine offers the engines: CPU model and vector extensions, native bf16, a one-line description."""
from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch

# The extensions that decide how fast the networks run on a CPU (x86 names; aarch64 reports bf16 as "bf16").
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "asimd", "bf16")
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


@functools.lru_cache(maxsize=1)
def cpu_info() -> tuple[str, frozenset[str]]:
    """The CPU's model name and its feature flags, from /proc/cpuinfo (empty where there is none)."""
    name, flags = "", frozenset()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and not name:
                name = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = frozenset(value.split())
    except OSError:
        pass
    return name or platform.processor() or platform.machine(), flags


def native_bf16() -> bool:
    """Whether the CPU computes bf16 in hardware (AVX-512 BF16, AMX, Arm BF16), so bf16 is a speed-up.

    oneDNN also accepts bf16 on plain AVX-512 and emulates it there, which is slower than fp32, so its own
    check is not enough.
    """
    return bool(NATIVE_BF16_FLAGS & cpu_info()[1])


def device_description(device: torch.device) -> str:
    """The accelerator's name, or the CPU's model and the vector extensions that matter for inference."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name, flags = cpu_info()
    present = [f for f in REPORTED_FLAGS if f in flags]
    return f"{name}, {torch.get_num_threads()} torch threads, CPU capability " \
           f"{torch.backends.cpu.get_cpu_capability()}" + (f", flags {' '.join(present)}" if present else "")
