"""Small, nearly invisible image degradations: a slight blur and faint noise.

A decoder's output differs from a real image in just these ways (PSNR about 30 dB), so an evaluator that
changes its mind under them measures the autoencoder rather than the finding. Used to test evaluators
(`evaluate-autoencoder`) and, as training augmentation, to make them robust (`train evaluator --degrade`).
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms.functional import gaussian_blur as _torchvision_blur

from medsynth.imaging import to_uint8, to_unit_interval


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (N, C, H, W) float images; sigma in pixels."""
    if sigma <= 0:
        return images
    kernel = 2 * int(np.ceil(3 * sigma)) + 1
    return _torchvision_blur(images, [kernel, kernel], [sigma, sigma])


def noise(images: torch.Tensor, psnr_db: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Additive Gaussian noise at a given PSNR for images in [0, 1]."""
    sigma = 10 ** (-psnr_db / 20)
    return images + sigma * torch.randn(images.shape, generator=generator)


# the fixed checks `evaluate-autoencoder` reports: (name, function of float images in [0, 1])
SENSITIVITY_CHECKS = {
    "blur 0.5 px": lambda x: blur(x, 0.5),
    "blur 0.8 px": lambda x: blur(x, 0.8),
    "noise 35 dB": lambda x: noise(x, 35.0, torch.Generator().manual_seed(0)),
}


def perturb_uint8(images: np.ndarray, check: str) -> np.ndarray:
    """Apply one of SENSITIVITY_CHECKS to uint8 NHWC images."""
    x = to_unit_interval(images)
    out = SENSITIVITY_CHECKS[check](x).clamp(0, 1)
    return to_uint8(out * 2 - 1)


def random_degradation(images: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """Training augmentation: each image, with `probability`, gets either a blur (sigma 0.3-1.0 px) or
    noise (30-40 dB), half and half; float images in [0, 1]."""
    out = images.clone()
    chosen = torch.rand(len(images), generator=generator) < probability
    use_blur = torch.rand(len(images), generator=generator) < 0.5
    amount = torch.rand(len(images), generator=generator)
    for i in torch.nonzero(chosen).flatten().tolist():
        single = images[i : i + 1]
        if use_blur[i]:
            out[i : i + 1] = blur(single, 0.3 + 0.7 * amount[i].item())
        else:
            out[i : i + 1] = noise(single, 30.0 + 10.0 * amount[i].item(), generator).clamp(0, 1)
    return out
