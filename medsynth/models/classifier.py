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

from medsynth.imaging import to_uint8_array, to_unit_interval

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "efficientnet_lite0")


STEMS = ("imagenet", "conv3s1", "conv3s2")


@dataclass
class ClassifierConfig:
    classes: list[str]
    arch: str = "resnet18"
    image_size: int = 128
    # "imagenet": 7x7/2 conv + max-pool (4x down); "conv3s1" / "conv3s2": one 3x3 conv, stride 1 or 2,
    # no max-pool, which keeps the detail of small (64-128 px) images
    stem: str = "conv3s1"
    base_width: int = 64  # channels of the first stage (64 in torchvision); narrower for small packs
    temperature: float = 1.0  # set by calibration on the validation split
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    metrics: dict[str, float] = field(default_factory=dict)
    # per class, the median calibrated probability of the class on real val images of it: the validation loop accepts
    # a generated image whose probability of the asked-for class reaches it (a weak class is not held to a strong one's)
    class_thresholds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"classifier arch must be one of {ARCHITECTURES}, got {self.arch!r}")
        if len(self.classes) < 2:
            raise ValueError("a classifier needs at least two classes")
        if self.stem not in STEMS:
            raise ValueError(f"classifier stem must be one of {STEMS}, got {self.stem!r}")
        if self.base_width < 8:
            raise ValueError(f"base_width must be at least 8, got {self.base_width}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")


_LAYERS = {
    "resnet18": ("BasicBlock", [2, 2, 2, 2]),
    "resnet34": ("BasicBlock", [3, 4, 6, 3]),
    "resnet50": ("Bottleneck", [3, 4, 6, 3]),
}


class WidthResNet(torchvision.models.ResNet):
    """torchvision's ResNet with every stage's width scaled: stages of w, 2w, 4w, 8w channels."""

    def __init__(self, block: type, layers: list[int], num_classes: int, base_width: int) -> None:
        super().__init__(block, layers, num_classes=num_classes)
        if base_width == 64:
            return
        self.inplanes = base_width
        self.conv1 = nn.Conv2d(3, base_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.layer1 = self._make_layer(block, base_width, layers[0])
        self.layer2 = self._make_layer(block, base_width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, base_width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, base_width * 8, layers[3], stride=2)
        self.fc = nn.Linear(base_width * 8 * block.expansion, num_classes)


def build_classifier(config: ClassifierConfig) -> nn.Module:
    if config.arch == "efficientnet_lite0":  # the independent evaluator's architecture
        from medsynth.models.features import efficientnet_lite0

        return efficientnet_lite0(num_classes=len(config.classes), pretrained=False)
    block_name, layers = _LAYERS[config.arch]
    block = getattr(torchvision.models.resnet, block_name)
    model = WidthResNet(block, layers, len(config.classes), config.base_width)
    if config.stem != "imagenet":
        stride = 1 if config.stem == "conv3s1" else 2
        model.conv1 = nn.Conv2d(3, config.base_width, kernel_size=3, stride=stride, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return model


def preprocess(images: Sequence[Image.Image], config: ClassifierConfig) -> torch.Tensor:
    """PIL images → normalised (N, 3, S, S) float tensor at the classifier's resolution."""
    size = config.image_size
    batch = to_unit_interval(to_uint8_array(images, size))
    mean = torch.tensor(config.mean).view(1, 3, 1, 1)
    std = torch.tensor(config.std).view(1, 3, 1, 1)
    return (batch - mean) / std


def save_classifier(
    model: nn.Module, config: ClassifierConfig, folder: str | Path, dtype: torch.dtype = torch.float32
) -> Path:
    """config.json + model.safetensors; float16 storage halves the size (loaded back as float32)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.detach().cpu().to(dtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in model.state_dict().items()
    }
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
    state = load_file(folder / WEIGHTS_NAME)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.to(device).eval(), config
