"""CLIP models through open_clip: local folders (open_clip_config.json + safetensors) or hub ids."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import open_clip
import torch
from safetensors.torch import save_file

from medsynth.registry import Source

CONFIG_NAME = "open_clip_config.json"
WEIGHTS_NAME = "open_clip_model.safetensors"
REFERENCE_NAME = "alignment_reference.json"  # real images' alignment percentiles, per domain and class


@dataclass
class LoadedClip:
    model: Any  # open_clip.CLIP or CustomTextCLIP
    preprocess: Callable  # PIL image → tensor
    tokenizer: Callable  # list[str] → token tensor
    reference: dict[str, dict[str, list[float]]] | None = None  # see REFERENCE_NAME


def open_clip_name(source: Source) -> str:
    return f"hf-hub:{source.hub_id}" if source.is_hub else f"local-dir:{source.path}"


def load_clip(source: Source, device: str | torch.device = "cpu") -> LoadedClip:
    """Build model, eval transform and tokenizer with open_clip's own factory."""
    name = open_clip_name(source)
    model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
    reference = None
    if not source.is_hub and (source.path / REFERENCE_NAME).is_file():
        reference = json.loads((source.path / REFERENCE_NAME).read_text())
    return LoadedClip(model.eval(), preprocess, open_clip.get_tokenizer(name), reference)


def save_clip(
    model: torch.nn.Module,
    model_cfg: Mapping[str, Any],
    folder: str | Path,
    preprocess_cfg: Mapping[str, Any] | None = None,
) -> Path:
    """Write the folder layout that open_clip's 'local-dir:' and 'hf-hub:' loaders read."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": dict(model_cfg), "preprocess_cfg": dict(preprocess_cfg or {})}
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, folder / WEIGHTS_NAME)
    return folder
