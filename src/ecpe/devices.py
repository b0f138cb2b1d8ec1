"""Which device a model runs on: the CPU by default, a GPU on request."""
from __future__ import annotations

import torch
from torch import nn

from .errors import UsageError

__all__ = ["resolve_device", "model_device", "device_info"]


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
