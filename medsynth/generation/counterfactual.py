"""Counterfactual pairs, "what the disease changes": one image redrawn as another class.

A real reference image (or a generated one) is encoded, noised part of the way (`strength`) and denoised with
the target class's prompt and its domain's adapter (SDEdit). What the noise left, the anatomy, stays; what the
class prompt asks for is drawn in. Each result is scored by the domain's classifier before and after, compared with
its source (a difference heat map, pixel correlation, SSIM outside the changed region), marked synthetic, and
carries its source's provenance in its own.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from torchmetrics.functional.image import structural_similarity_index_measure

from medsynth import __version__
from medsynth.generation.engine import MAX_SEED, RequestError, SyntheticImage, check_whole_number
from medsynth.generation.prompts import class_prompt
from medsynth.generation.scoring import ClassifierScore

if TYPE_CHECKING:
    from medsynth.generation.engine import MedSynth

DEFAULT_STRENGTH = 0.6
STRENGTH_RANGE = (0.1, 1.0)
MAX_COUNTERFACTUALS = 16
CORRELATION_SIZE = 64  # the bar's measure of kept structure: greyscale pixel correlation at 64 px
CHANGED_SHARE = 0.1  # the most changed tenth of the image is "the changed region"; SSIM is read outside it


@dataclass(frozen=True)
class CounterfactualRequest:
    domain: str
    target: str  # class code the image is redrawn as
    strength: float = DEFAULT_STRENGTH
    n: int = 1
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None

    def check(self) -> None:
        low, high = STRENGTH_RANGE
        if isinstance(self.strength, bool) or not isinstance(self.strength, (int, float)):
            raise RequestError(f"strength must be a number between {low:g} and {high:g}; got {self.strength!r}")
        if not low <= float(self.strength) <= high:
            raise RequestError(f"strength must be between {low:g} and {high:g}; got {self.strength:g}")
        check_whole_number("n", self.n, 1, MAX_COUNTERFACTUALS)
        if self.seed is not None:
            check_whole_number("seed", self.seed, 0, MAX_SEED)


@dataclass(frozen=True)
class StructureKept:
    """How much of the source a counterfactual keeps."""

    pixel_correlation: float  # greyscale, at CORRELATION_SIZE px
    ssim_outside_change: float  # SSIM over the pixels outside the most changed CHANGED_SHARE of the image
    changed: np.ndarray  # (H, W) float in [0, 1]: the smoothed absolute difference, for the heat map


@dataclass(frozen=True)
class Counterfactual:
    image: SyntheticImage  # the redrawn image, with its provenance (source included)
    kept: StructureKept
    heat_map: Image.Image  # the difference over the source, for the screen


@dataclass(frozen=True)
class CounterfactualResult:
    request: CounterfactualRequest
    source: Image.Image  # the source at the generator's resolution and in the domain's colour mode
    source_score: ClassifierScore
    source_info: dict[str, Any]
    prompt: str
    strength: float
    steps: int
    guidance: float
    seed: int
    items: list[Counterfactual]
    elapsed_s: float

    @property
    def images(self) -> list[SyntheticImage]:
        return [item.image for item in self.items]

    def moved_share(self) -> float:
        """Share of the counterfactuals the classifier reads as the target class."""
        return float(np.mean([item.image.classifier.predicted == self.request.target for item in self.items]))


def square(image: Image.Image, size: int, grey: bool) -> Image.Image:
    """The centre square of `image` at `size` px, in the domain's colour mode (as every generated image is)."""
    image = image.convert("L" if grey else "RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    return image if side == size else image.resize((size, size), Image.Resampling.LANCZOS)


def grey_array(image: Image.Image, size: int | None = None) -> np.ndarray:
    image = image.convert("L")
    if size is not None and image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float64) / 255.0


def pixel_correlation(first: Image.Image, second: Image.Image, size: int = CORRELATION_SIZE) -> float:
    """Pearson correlation of the two images' grey levels at `size` px: 1 keeps every structure, 0 none."""
    a, b = grey_array(first, size).ravel(), grey_array(second, size).ravel()
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def structure_kept(source: Image.Image, result: Image.Image) -> StructureKept:
    """Pixel correlation, the smoothed difference map, and SSIM outside the most changed tenth of the image."""
    a, b = grey_array(source), grey_array(result, source.width)
    changed = ndimage.gaussian_filter(np.abs(a - b), sigma=max(1.0, source.width / 64))
    ssim_map = structural_similarity_index_measure(
        torch.from_numpy(b)[None, None], torch.from_numpy(a)[None, None], data_range=1.0, return_full_image=True
    )[1][0, 0].numpy()
    outside = changed < np.quantile(changed, 1 - CHANGED_SHARE)
    if not outside.any():  # the change is even over the whole image: no region was left alone
        outside[:] = True
    scale = changed.max() or 1.0
    return StructureKept(pixel_correlation(source, result), float(ssim_map[outside].mean()), changed / scale)


def heat_map(source: Image.Image, changed: np.ndarray, opacity: float = 0.6) -> Image.Image:
    """The changed region in warm colours over a grey copy of the source (brighter: more changed)."""
    from matplotlib import colormaps

    colours = (colormaps["inferno"](changed)[..., :3] * 255).astype(np.uint8)
    alpha = (opacity * changed)[..., None]
    base = np.asarray(source.convert("L").convert("RGB"), dtype=np.float64)
    return Image.fromarray((base * (1 - alpha) + colours * alpha).astype(np.uint8))


def make_counterfactual(
    engine: "MedSynth", source: Image.Image, request: CounterfactualRequest, source_info: dict[str, Any] | None = None
) -> CounterfactualResult:
    """Redraw `source` as `request.target`; `source_info` says where the source came from (a file, a study item, a
    generated image's record) and goes into every result's provenance."""
    started = time.perf_counter()
    request.check()
    domain = engine.domain(request.domain)
    target = domain.get_class(request.target).code if request.target else None
    if target is None:
        raise RequestError("a counterfactual needs a target class (--to)")
    generator = engine.generator
    source = square(source, generator.resolution, domain.grey)
    prompt = class_prompt(domain, target)
    steps = request.steps or engine.pack.default_steps
    guidance = float(
        engine.registry.default_guidance(engine.pack.name, domain.name)
        if request.guidance is None
        else request.guidance
    )
    seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
    seeds = list(range(seed, seed + request.n))
    strength = float(request.strength)
    outputs = generator.edit(
        [source] * request.n, prompt, seeds, domain.name, strength, steps, guidance, engine.pack.negative_prompt
    )
    outputs = [image.convert("L") for image in outputs] if domain.grey else outputs
    classifier = engine.classifiers[domain.name]
    source_score = classifier.score([source])[0]
    class_prompts = {c.code: class_prompt(domain, c.code) for c in domain.classes}
    alignments = engine.clips[domain.name].score(outputs, prompt, class_prompts, target, domain.name)
    info = generator.info(domain.name)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    source_info = {"kind": "reference image", **(source_info or {})}
    items = []
    for image, image_seed, score, alignment in zip(outputs, seeds, classifier.score(outputs), alignments):
        kept = structure_kept(source, image)
        record = {
            "kind": "counterfactual", "prompt": prompt, "negative_prompt": engine.pack.negative_prompt,
            "seed": image_seed, "domain": domain.name, "label": target, "pack": engine.pack.name, "base": info.base,
            "adapter": info.adapter, "scheduler": info.scheduler, "steps": steps, "guidance": guidance,
            "strength": strength, "method": "SDEdit (noised to strength, denoised with the target class prompt)",
            "device": info.device, "resolution": f"{image.width}x{image.height}", "round": 1, "accepted": None,
            "source": source_info,
            "source_scores": {"predicted": source_score.predicted, "probabilities": _rounded(source_score.probabilities)},
            "scores": {
                "predicted": score.predicted, "confidence": round(score.confidence, 4),
                "probabilities": _rounded(score.probabilities), "clip_cosine": round(alignment.cosine, 4),
                "clip_rank": alignment.rank,
            },
            "structure_kept": {
                "pixel_correlation_64px": round(kept.pixel_correlation, 4),
                "ssim_outside_change": round(kept.ssim_outside_change, 4),
            },
            "created": created, "software": f"medsynth {__version__}",
        }  # fmt: skip
        synthetic = SyntheticImage(image, image_seed, 1, None, score, alignment, record)
        items.append(Counterfactual(synthetic, kept, heat_map(source, kept.changed)))
    return CounterfactualResult(
        request, source, source_score, source_info, prompt, strength, steps, guidance, seed, items,
        time.perf_counter() - started,
    )  # fmt: skip


def _rounded(probabilities: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in probabilities.items()}
