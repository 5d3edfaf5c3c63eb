"""`python -m medsynth evaluate --domain D --generated DIR`: measure a folder of generated images.

Reads the folder's metadata.csv (from `export`) or manifest.csv (from `generate`), and reports
against the domain's real test split: Fréchet distance and KID on offline EfficientNet-Lite0
features, Inception FID through torchmetrics when its weights are in the local cache, CLIP score,
evaluator macro-F1 with a confusion matrix, and the nearest training image of each generated one.
Writes results.json and REPORT.md with pictures into the output folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from medsynth.data.cache import load_domain_images
from medsynth.data.folders import load_rgb
from medsynth.generation.scoring import ClipScorer
from medsynth.imaging import to_pil_images, to_uint8_array
from medsynth.registry import Registry, selected_pack_name
from medsynth.research.evaluators import load_evaluator_panel
from medsynth.research.measures import (
    FeatureExtractor,
    evaluator_report,
    frechet_distance,
    kernel_distance,
    nearest_training_images,
)
from medsynth.research.pictures import confusion_plot, image_grid
from medsynth.research.reports import render_generated_report

logger = logging.getLogger(__name__)

LISTS = ("metadata.csv", "manifest.csv")


@dataclass(frozen=True)
class GeneratedSet:
    images: list[Image.Image]
    labels: list[str]
    prompts: list[str]


def load_generated(folder: Path, size: int | None = None) -> GeneratedSet:
    """The folder's labelled images, all at `size` px; by default at the first image's own size (the generator's)."""
    for name in LISTS:
        if (folder / name).is_file():
            frame = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
            break
    else:
        raise FileNotFoundError(f"{folder} has neither metadata.csv (export) nor manifest.csv (generate)")
    frame = frame[frame["label"] != ""]
    if frame.empty:
        raise ValueError(f"{folder}: no labelled images to evaluate")
    files = list(frame["file"])
    first = load_rgb(folder / files[0], size)
    images = [first] + [load_rgb(folder / f, first.width) for f in files[1:]]
    return GeneratedSet(images, list(frame["label"]), list(frame["prompt"]))


def inception_fid(real: np.ndarray, generated: list[Image.Image]) -> float | None:
    """torchmetrics' Inception FID, only when its weights are already cached (no download here)."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance

        metric = FrechetInceptionDistance(feature=2048)
    except Exception as error:  # missing torch-fidelity or weights: say so in the report
        logger.info("Inception FID skipped: %s", error)
        return None
    metric.update(torch.from_numpy(real).permute(0, 3, 1, 2), real=True)  # uint8 NCHW, as torchmetrics' Inception wants
    metric.update(torch.from_numpy(to_uint8_array(generated)).permute(0, 3, 1, 2), real=False)
    return float(metric.compute())


def evaluate_generated(
    registry: Registry,
    domain_name: str,
    generated_dir: Path,
    out: Path,
    pack: str | None = None,
    evaluators: Path | None = None,
) -> Path:
    """`evaluators`: an evaluator set (default runs/evaluators); every evaluator of the domain's panel scores the
    generated and the real test images, so the report shows how much the share depends on one evaluator."""
    domain = registry.get_domain(domain_name)
    codes = list(domain.class_codes)
    sources = domain.sources_for(pack or selected_pack_name())
    generated = load_generated(Path(generated_dir))
    data = load_domain_images(domain, generated.images[0].width)  # real images at the generator's size
    test, train = data.split("test"), data.split("train")
    unknown = sorted(set(generated.labels) - set(codes))
    if unknown:
        raise ValueError(f"labels {unknown} are not classes of {domain.name}")
    out.mkdir(parents=True, exist_ok=True)
    features = FeatureExtractor()
    real_feats, gen_feats, train_feats = features(test.images), features(generated.images), features(train.images)
    panel = load_evaluator_panel(domain.name, evaluators)
    test_images, test_labels = to_pil_images(test.images), list(test.frame["label"])
    panel_reports = {seed: evaluator_report(e, generated.images, generated.labels) for seed, e in panel.items()}
    report = next(iter(panel_reports.values()))  # the panel's first evaluator draws the confusion matrix
    results = {
        "domain": domain.name,
        "generated_dir": str(generated_dir),
        "resolution": test.images.shape[1],
        "n_generated": len(generated.images),
        "n_real_test": len(test),
        "per_class": pd.Series(generated.labels).value_counts().to_dict(),
        "frechet_distance_effnet": frechet_distance(real_feats, gen_feats),
        "kid_effnet": kernel_distance(real_feats, gen_feats)[0],
        "inception_fid": inception_fid(test.images, generated.images),
        "evaluator_macro_f1": report.macro_f1,
        "evaluator_accuracy": report.accuracy,
        "evaluator_per_class_recall": dict(zip(codes, report.per_class_recall)),
        "evaluator_panel": [
            {
                "seed": seed,
                "generated_macro_f1": panel_reports[seed].macro_f1,
                "real_macro_f1": evaluator_report(e, test_images, test_labels).macro_f1,
            }
            for seed, e in panel.items()
        ],  # fmt: skip
    }
    if sources.clip is not None and sources.missing_reason() is None:
        clip = ClipScorer.from_source(sources.clip)
        # embed each distinct prompt once and all images in batches, not one model call per image
        prompts = sorted(set(generated.prompts))
        text = clip.embed_texts(prompts)
        own = text[[prompts.index(p) for p in generated.prompts]]
        results["clip_score"] = float((clip.embed_images(generated.images) * own).sum(dim=1).mean())
    memo = nearest_training_images(gen_feats, train_feats)
    results["memorisation_median"], results["memorisation_max"] = memo.median, memo.max
    confusion_plot(report.confusion, codes, f"{domain.name}: evaluator on generated images", out / "confusion.png")
    pairs = [[generated.images[g], to_pil_images(train.images[t : t + 1])[0]] for g, t, _ in memo.pairs]
    image_grid(pairs, [f"cos {s:.3f}" for _, _, s in memo.pairs], label_width=90).save(out / "nearest_training.png")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "REPORT.md").write_text(render_generated_report(results))
    return out / "REPORT.md"
