"""Which device a model runs on: the CPU by default, a GPU on request."""
from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import torch
from torch import nn

from .errors import UsageError

__all__ = ["resolve_device", "model_device", "device_info", "native_bf16", "resolve_precision", "retain_freed_memory"]


def resolve_device(name: str | torch.device | None = "cpu") -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (the first GPU when PyTorch sees one, else the CPU).

    Raises ValueError naming what is missing when a GPU is asked for and PyTorch cannot use one.
    """
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "cpu").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}, but no GPU is visible"
            raise UsageError(f"device {name!r} asked for, but this PyTorch ({torch.__version__}) is {build}; "
                             f"use --device cpu, or install a CUDA build of torch")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"device {name!r} asked for, but only {torch.cuda.device_count()} GPU(s) are visible")
    elif device.type != "cpu":
        raise UsageError(f"unsupported device {name!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'")
    return device


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (or buffer); the CPU for a model with neither."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def device_info(device: torch.device) -> dict[str, str]:
    """What to record next to a result: the device and, for a GPU, its name."""
    info = {"device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware: a GPU that supports bfloat16, or a CPU with
    AMX or AVX-512 BF16 (docs/speed.md). Other CPUs emulate bfloat16 and can train slower in it than in float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    if all(callable(probe) for probe in probes):
        return any(bool(probe()) for probe in probes)
    return bool(_cpu_flags() & {"amx_bf16", "avx512_bf16"})  # torch without the probes: the kernel's flags


def resolve_precision(name: str, device: torch.device | str = "cpu") -> str:
    """``"fp32"`` or ``"bf16"`` as given; ``"auto"``: ``"bf16"`` where :func:`native_bf16` holds, else ``"fp32"``."""
    if name == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if name not in ("fp32", "bf16"):
        raise UsageError(f"unknown precision {name!r}; use 'fp32', 'bf16' or 'auto'")
    return name


# mallopt parameters of glibc's malloc.h
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def retain_freed_memory() -> bool:
    """Keep the memory a training step frees for the next step instead of handing it back to the system.

    A training step allocates and frees the same large tensors every batch (word vectors, window rows,
    their gradients: megabytes each). By default glibc serves such sizes with fresh ``mmap`` pages or trims
    the heap once enough is free, so steps touch new pages and the kernel zero-fills them again (42-48 k
    page faults an epoch of a student with 2,500 transfer documents). With blocks up to 32 MB taken from
    the heap, freed memory trimmed only past 1 GB and the heap grown 64 MB at a time, the pages are reused
    once the heap has grown to the peak (0.2-1.7 k faults from the third epoch on; docs/speed.md). Results
    are unchanged: only where memory comes from. Process-wide; the peak memory stays reserved until the
    process ends.

    Returns whether the allocator took the settings (False off glibc, e.g. on macOS or musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20))
    return all(mallopt(param, value) == 1 for param, value in settings)
