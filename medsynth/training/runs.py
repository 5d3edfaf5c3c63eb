"""What every training run shares: resumable checkpoints, run records with wall time and hardware."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from medsynth.precision import hardware

logger = logging.getLogger(__name__)


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


def write_run_record(
    folder: Path, name: str, config: Any, metrics: dict[str, Any], elapsed_s: float, steps: int, mixed: bool = True
) -> Path:
    """training_<name>.json beside the trained files: config, wall time, hardware (`mixed`: whether the run used the
    device's mixed precision), metrics."""
    record = {
        "component": name,
        "config": asdict(config) if hasattr(config, "__dataclass_fields__") else dict(config),
        "steps": steps,
        "wall_time_s": round(elapsed_s, 1),
        "hardware": hardware(mixed),
        "torch": torch.__version__,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "metrics": metrics,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"training_{name}.json"
    path.write_text(json.dumps(record, indent=2, default=str))
    return path
