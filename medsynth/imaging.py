"""The one conversion between the three forms an image takes here.

uint8 NHWC arrays (what the caches and the data hold), float NCHW tensors in [-1, 1] (what the
autoencoder, UNet and feature networks take) and PIL images (what scorers, files and the UI take).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image


def to_unit_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 NHWC (array or tensor) → float32 NCHW in [-1, 1]."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images if images.flags.writeable else images.copy())  # PIL's arrays are read-only
    return images.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_unit_interval(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 NHWC → float32 NCHW in [0, 1] (ImageNet-style normalisation starts here)."""
    return (to_unit_tensor(images) + 1.0) / 2.0


def to_uint8(batch: torch.Tensor) -> np.ndarray:
    """float NCHW in [-1, 1] → uint8 NHWC, rounded and clipped."""
    return ((batch.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def to_pil_images(arrays: np.ndarray) -> list[Image.Image]:
    """uint8 NHWC → PIL images."""
    return [Image.fromarray(a) for a in arrays]


def to_uint8_array(images: Sequence[Image.Image], size: int | None = None) -> np.ndarray:
    """PIL images → uint8 NHWC RGB, resized (bicubic) to `size`² where given."""
    return np.stack([np.asarray(resized_rgb(image, size)) for image in images])


def resized_rgb(image: Image.Image, size: int | None = None) -> Image.Image:
    """An RGB copy of `image`, resized (bicubic) to `size`² where given and different."""
    image = image.convert("RGB")
    if size is not None and image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return image
