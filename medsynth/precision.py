"""Which device and number format a model runs in: one decision for training and for generation.

CUDA runs in half precision as before. On the CPU, bfloat16 autocast is used where the CPU has AMX
tiles: measured on such a CPU a 2048² matmul runs 6× faster in bf16, and UNet and autoencoder training steps
2-3× faster (bench/bench_precision.py); AVX-512 BF16 alone runs bf16 slower than float32. Elsewhere the CPU stays in float32,
with one log line saying so. MEDSYNTH_CPU_BF16=0 turns it off, =1 forces it on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
from datetime import timedelta
from functools import lru_cache

import torch

logger = logging.getLogger(__name__)

CPU_BF16_ENV = "MEDSYNTH_CPU_BF16"


@lru_cache(maxsize=1)
def cpu_has_bf16_units() -> bool:
    """AMX tiles: the CPU multiplies bf16 faster than float32. AVX-512 BF16 alone is not enough: measured on such a
    Xeon, a 2048² matmul ran at 182 GFLOP/s in bf16 against 311 in float32, and 4 images × 20 steps of pack v9 took
    6.19 s under bf16 autocast against 4.24 s in float32."""
    return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def cpu_bf16_enabled() -> bool:
    """bf16 autocast on the CPU: on where the CPU supports it, unless MEDSYNTH_CPU_BF16 says otherwise."""
    setting = os.environ.get(CPU_BF16_ENV, "auto").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    if setting != "auto":
        raise ValueError(f"{CPU_BF16_ENV}={setting!r}: use auto, 1 or 0")
    supported = cpu_has_bf16_units()
    if not supported:
        _log_float32_once()
    return supported


@lru_cache(maxsize=1)
def _log_float32_once() -> None:
    logger.info("this CPU has no AMX bf16 units: models run in float32 on it")


def launched_processes():
    """accelerate's view of the processes working together (training, export): one, or those of `accelerate
    launch` (rank, world size, device, main_process_first); without CUDA they talk over gloo."""
    from accelerate import PartialState

    # the first call starts the process group: the others may wait that long while the main one fills a cache
    return PartialState(cpu=not torch.cuda.is_available(), timeout=timedelta(hours=2))


def training_device() -> torch.device:
    """This process's device: under `accelerate launch` each process has its own GPU (cuda:<local rank>)."""
    return launched_processes().device


def inference_device(device: str | None = None) -> tuple[torch.device, torch.dtype]:
    """Where a pipeline runs and the dtype of its weights: CUDA in half precision, CPU in float32 (bf16 on the CPU
    comes from autocast around the float32 weights)."""
    chosen = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return chosen, (torch.float16 if chosen.type == "cuda" else torch.float32)


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The dtype mixed precision computes in on `device`; None where it stays float32."""
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if kind == "cpu" and cpu_bf16_enabled():
        return torch.bfloat16
    return None


def autocast(device: torch.device | str, enabled: bool = True) -> contextlib.AbstractContextManager:
    """torch.autocast in the device's mixed precision, or nothing where there is none."""
    dtype = autocast_dtype(device) if enabled else None
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def autocast_pays(model: torch.nn.Module, device: torch.device | str) -> bool:
    """Whether mixed precision speeds `model` up on `device`. Not on the CPU for a network of depthwise
    convolutions (EfficientNet): oneDNN has no bf16 fast path for them, and such a network trains faster in
    float32 with channels-last memory (`channels_last`; EfficientNet-Lite0 at 128 px: bench/bench_precision.py)."""
    if torch.device(device).type != "cpu":
        return True
    return not any(
        isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels for m in model.modules()
    )


def model_autocast(model: torch.nn.Module, device: torch.device | str) -> contextlib.AbstractContextManager:
    """`autocast` for `model`: the device's mixed precision where it pays for this network, else nothing."""
    return autocast(device, enabled=autocast_pays(model, device))


def channels_last(model: torch.nn.Module, device: torch.device | str) -> bool:
    """Put a CPU model that mixed precision does not pay for into channels-last memory (its fast float32 layout);
    returns whether mixed precision stays on for it."""
    mixed = autocast_pays(model, device)
    if not mixed:
        model.to(memory_format=torch.channels_last)
    return mixed


def precision_name(device: torch.device | str, mixed: bool = True) -> str:
    dtype = autocast_dtype(device) if mixed else None
    return "float32" if dtype is None else f"{str(dtype).removeprefix('torch.')} autocast"


def hardware(mixed: bool = True) -> str:
    """The machine a run used, for run records: device, threads, number format (`mixed`: whether the run used
    mixed precision where the device has it)."""
    processes = launched_processes().num_processes
    together = f", {processes} processes" if processes > 1 else ""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}, {precision_name('cuda', mixed)}{together})"
    threads = f"{torch.get_num_threads()} threads"
    return f"CPU {platform.processor() or platform.machine()}, {threads}, {precision_name('cpu', mixed)}{together}"
