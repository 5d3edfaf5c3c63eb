"""What every training run shares: seeding, resumable checkpoints, progress, run records."""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..precision import precision_name
from ..registry import PROJECT_ROOT

logger = logging.getLogger(__name__)

PACK_DOMAINS = ("dermatology", "ophthalmology", "brain_mri", "chest_xray")
MINI_PACK_DIR = PROJECT_ROOT / "assets" / "models" / "mini"


def runs_dir() -> Path:
    """Where checkpoints and caches go: $MEDSYNTH_RUNS or ./runs (git-ignored, never committed)."""
    return Path(os.environ.get("MEDSYNTH_RUNS") or PROJECT_ROOT / "runs")


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}, {precision_name('cuda')})"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {precision_name('cpu')}"


def pick_training_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Checkpoint:
    """A resumable training state in one torch file inside the run folder (not part of the pack)."""

    path: Path

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, step: int, elapsed_s: float, **states: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        def state(value: Any) -> Any:
            if isinstance(value, torch.Generator):
                return value.get_state()
            return value.state_dict() if hasattr(value, "state_dict") else value

        payload = {"step": step, "elapsed_s": elapsed_s, **{k: state(v) for k, v in states.items()}}
        tmp = self.path.with_suffix(".tmp")
        torch.save(payload, tmp)
        tmp.replace(self.path)  # a kill mid-save never leaves a broken checkpoint

    def load(self, **targets: Any) -> tuple[int, float]:
        """Restore objects in place; returns (step, elapsed seconds) of the saved run."""
        payload = torch.load(self.path, map_location="cpu", weights_only=False)
        for key, target in targets.items():
            if key not in payload:
                continue
            if isinstance(target, torch.Generator):
                target.set_state(payload[key])
            elif hasattr(target, "load_state_dict"):
                try:
                    target.load_state_dict(payload[key])
                except (RuntimeError, ValueError, KeyError) as error:  # torch lists every key: keep its first line
                    raise ValueError(
                        f"{self.path} holds a {key} of another layout (another model or LoRA --targets): "
                        f"delete it to start over, or train into another --out folder ({str(error).splitlines()[0]})"
                    ) from error
        return int(payload["step"]), float(payload.get("elapsed_s", 0.0))


def write_run_record(folder: Path, name: str, config: Any, metrics: dict[str, Any], elapsed_s: float, steps: int) -> Path:
    """training_<name>.json beside the trained files: config, wall time, hardware, metrics."""
    record = {
        "component": name,
        "config": asdict(config) if hasattr(config, "__dataclass_fields__") else dict(config),
        "steps": steps,
        "wall_time_s": round(elapsed_s, 1),
        "hardware": hardware(),
        "torch": torch.__version__,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "metrics": metrics,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"training_{name}.json"
    path.write_text(json.dumps(record, indent=2, default=str))
    return path


def infinite_batches(n_items: int, batch_size: int, generator: torch.Generator, weights: torch.Tensor | None = None):
    """Endless shuffled index batches; with weights, sampled with replacement (class balancing)."""
    while True:
        if weights is not None:
            yield torch.multinomial(weights, batch_size, replacement=True, generator=generator)
            continue
        order = torch.randperm(n_items, generator=generator)
        for start in range(0, n_items - batch_size + 1, batch_size):
            yield order[start : start + batch_size]
