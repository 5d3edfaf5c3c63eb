"""Domain classifier: a torchvision ResNet family model stored as config.json + model.safetensors."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torchvision
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ARCHITECTURES = ("resnet18", "resnet34", "resnet50")


@dataclass
class ClassifierConfig:
    classes: list[str]
    arch: str = "resnet18"
    image_size: int = 128
    # a 3x3 stride-1 stem without max-pool keeps detail in small (<=128 px) images
    small_input_stem: bool = True
    temperature: float = 1.0  # set by calibration on the validation split
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"classifier arch must be one of {ARCHITECTURES}, got {self.arch!r}")
        if len(self.classes) < 2:
            raise ValueError("a classifier needs at least two classes")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")


def build_classifier(config: ClassifierConfig) -> nn.Module:
    model = getattr(torchvision.models, config.arch)(weights=None, num_classes=len(config.classes))
    if config.small_input_stem:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return model


def preprocess(images: Sequence[Image.Image], config: ClassifierConfig) -> torch.Tensor:
    """PIL images → normalised (N, 3, S, S) float tensor at the classifier's resolution."""
    size = config.image_size
    arrays = [
        torchvision.transforms.functional.pil_to_tensor(
            image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        )
        for image in images
    ]
    batch = torch.stack(arrays).float() / 255.0
    mean = torch.tensor(config.mean).view(1, 3, 1, 1)
    std = torch.tensor(config.std).view(1, 3, 1, 1)
    return (batch - mean) / std


def save_classifier(model: nn.Module, config: ClassifierConfig, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, folder / WEIGHTS_NAME)
    (folder / CONFIG_NAME).write_text(json.dumps(asdict(config), indent=2))
    return folder


def load_classifier(folder: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ClassifierConfig]:
    folder = Path(folder)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"classifier folder {folder} has no {name}")
    raw = json.loads((folder / CONFIG_NAME).read_text())
    raw["mean"], raw["std"] = tuple(raw["mean"]), tuple(raw["std"])
    config = ClassifierConfig(**raw)
    model = build_classifier(config)
    model.load_state_dict(load_file(folder / WEIGHTS_NAME))
    return model.to(device).eval(), config
