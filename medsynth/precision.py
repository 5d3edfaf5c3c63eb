"""Which device and number format a model runs in: one decision for training and for generation.

CUDA runs in half precision as before. On the CPU, bfloat16 autocast is used where a short measured probe finds
it faster: CPU flags do not predict it (AMX Xeons ran a 2048² matmul 6× faster in bf16; a Xeon with AVX-512 BF16
alone ran it slower than float32; a Zen 5 EPYC without AMX served a request 1.75× faster in bf16; AVX2-only CPUs
fall back to scalar bf16 code). The probe times a few representative matmuls and convolutions in both formats
(about half a second), once per CPU model, thread count and torch version, cached in ~/.cache/medsynth; one log
line says what it chose. MEDSYNTH_CPU_BF16=0 turns bf16 off, =1 forces it on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

CPU_BF16_ENV = "MEDSYNTH_CPU_BF16"
PROBE_CACHE_ENV = "MEDSYNTH_PRECISION_CACHE"  # where the probe's verdicts are kept (default ~/.cache/medsynth)
BF16_MUST_WIN = 0.8  # bf16 is chosen when it takes at most this share of float32's time on the probe
PROBE_REP_S = 0.08  # each format is timed for about this long (two formats, two workloads: about half a second)


@lru_cache(maxsize=1)
def cpu_has_bf16_units() -> bool:
    """Whether the CPU has AMX tiles, for benchmark reports. It decides nothing: a Zen 5 EPYC without AMX served
    bf16 1.75× faster, a Xeon with AVX-512 BF16 but no AMX slower (182 against 311 GFLOP/s on a 2048² matmul), so
    the decision is the measured probe's (`cpu_bf16_pays`)."""
    return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


@dataclass(frozen=True)
class PrecisionProbe:
    """One CPU's measured times for the probe's workload in float32 and under bf16 autocast."""

    cpu: str
    threads: int
    torch: str
    float32_s: float
    bf16_s: float  # may be a single, cut-short repetition where bf16 is many times slower (scalar fallback)

    @property
    def bf16_pays(self) -> bool:
        return self.bf16_s <= BF16_MUST_WIN * self.float32_s

    @property
    def key(self) -> str:
        return f"{self.cpu} | {self.threads} threads | torch {self.torch}"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), or what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _workload() -> list:
    """What a request spends its time on, at the embedded pack's shapes: attention-sized matmuls over a 32×32
    latent and a 3×3 convolution of a ResNet block."""
    tokens, width = torch.randn(512, 192), torch.randn(192, 192)
    feature_map, kernel = torch.randn(1, 128, 32, 32), torch.randn(128, 128, 3, 3)
    return [lambda: tokens @ width @ width.T, lambda: torch.nn.functional.conv2d(feature_map, kernel, padding=1)]


def _seconds_per_rep(workload: list, bf16: bool, cut_after: float | None = None) -> float:
    """One warm-up, then repetitions for about PROBE_REP_S; a warm-up longer than `cut_after` is the answer (bf16 in
    scalar code runs 10-50× slower, and the probe must stay short)."""
    context = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with torch.inference_mode(), context:
        started = time.perf_counter()
        for op in workload:
            op()
        first = time.perf_counter() - started
        if cut_after is not None and first > cut_after:
            return first
        reps, started = 0, time.perf_counter()
        while reps < 3 or time.perf_counter() - started < PROBE_REP_S:
            for op in workload:
                op()
            reps += 1
        return (time.perf_counter() - started) / reps


def measure_precision() -> PrecisionProbe:
    workload = _workload()
    float32 = _seconds_per_rep(workload, bf16=False)
    bf16 = _seconds_per_rep(workload, bf16=True, cut_after=4 * float32 + 0.05)
    return PrecisionProbe(cpu_model(), torch.get_num_threads(), torch.__version__, float32, bf16)


def _probe_cache() -> Path:
    return Path(os.environ.get(PROBE_CACHE_ENV) or Path.home() / ".cache" / "medsynth" / "precision_probe.json")


@lru_cache(maxsize=1)
def cpu_bf16_pays() -> bool:
    """Whether bf16 autocast is faster than float32 on this CPU, by the cached or a fresh probe (logged once)."""
    key = PrecisionProbe(cpu_model(), torch.get_num_threads(), torch.__version__, 0.0, 0.0).key
    path = _probe_cache()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        probe = PrecisionProbe(**known[key])
    else:
        probe = measure_precision()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({**known, key: asdict(probe)}, indent=2))
        except OSError:  # a read-only home: measured again next start
            pass
    chosen = "bf16 autocast" if probe.bf16_pays else "float32"
    logger.info(
        "precision probe on %s: float32 %.1f ms, bf16 %.1f ms per workload: %s", probe.key, 1e3 * probe.float32_s,
        1e3 * probe.bf16_s, chosen,
    )  # fmt: skip
    return probe.bf16_pays


def cpu_bf16_enabled() -> bool:
    """bf16 autocast on the CPU: on where the probe measured it faster, unless MEDSYNTH_CPU_BF16 says otherwise."""
    setting = os.environ.get(CPU_BF16_ENV, "auto").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    if setting != "auto":
        raise ValueError(f"{CPU_BF16_ENV}={setting!r}: use auto, 1 or 0")
    return cpu_bf16_pays()


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
