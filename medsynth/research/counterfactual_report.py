"""`medsynth evaluate-counterfactuals`: counterfactual pairs measured per domain, with pictures.

Real images of a domain's normal or benign class (registry: baseline_class) are redrawn as a target class at the
app's strength. An independent evaluator reads sources and results; a pair works when the result is read as the
target about as often as real images of it are (at least the smaller of one half and the evaluator's recall on
them), clearly more often than the sources are (30 points), and keeps the source's structure (median pixel
correlation at 64 px, greyscale, at least 0.6).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from medsynth.data.cache import load_domain_images
from medsynth.generation.counterfactual import DEFAULT_STRENGTH, CounterfactualRequest, make_counterfactual
from medsynth.generation.engine import MedSynth
from medsynth.imaging import to_pil_images
from medsynth.registry import Domain, Registry, selected_pack_name
from medsynth.research.config import CounterfactualEvaluationConfig
from medsynth.research.evaluators import load_evaluator
from medsynth.research.measures import evaluator_report
from medsynth.research.pictures import image_grid

MIN_MOVED_GAIN = 0.30  # the results read as the target this much more often than the sources
MIN_CORRELATION = 0.6  # median pixel correlation with the source (64 px, greyscale)
PICTURED = 8  # pairs drawn per domain


@dataclass(frozen=True)
class PairMeasure:
    """One domain's counterfactual pairs, as the report reads them."""

    domain: str
    source_class: str
    target: str
    n: int
    strength: float
    sources_read_as_target: float  # share of the real sources the evaluator reads as the target
    round_trip_read_as_target: float  # the sources only encoded and decoded: what the decoder's softness alone does
    results_read_as_target: float  # share of the counterfactuals it reads so
    real_target_recall: float  # its recall on real images of the target class (same split)
    median_pixel_correlation: float
    median_ssim_outside_change: float

    @property
    def bar(self) -> float:
        return min(0.5, self.real_target_recall)

    @property
    def passes(self) -> bool:
        return (
            self.results_read_as_target >= self.bar
            and self.results_read_as_target - self.sources_read_as_target >= MIN_MOVED_GAIN
            and self.median_pixel_correlation >= MIN_CORRELATION
        )


def default_targets(registry: Registry, domains: list[str]) -> list[tuple[str, str]]:
    """Each domain to its first class after its baseline (registry order)."""
    pairs = []
    for name in domains:
        domain = registry.get_domain(name)
        start = domain.baseline_class or domain.classes[0].code
        pairs.append((name, next(c.code for c in domain.classes if c.code != start)))
    return pairs


def measure_domain(
    engine: MedSynth, domain: Domain, target: str, config: CounterfactualEvaluationConfig
) -> tuple[PairMeasure, Image.Image]:
    """The pairs of one domain, and a picture: source, counterfactual and heat map rows for PICTURED of them."""
    start = domain.baseline_class or domain.classes[0].code
    part = load_domain_images(domain, engine.generator.resolution).split(config.split)
    labels = list(part.frame["label"])
    evaluator = load_evaluator(domain.name, config.evaluators)
    real = evaluator_report(evaluator, to_pil_images(part.images), labels)
    candidates = np.flatnonzero(np.asarray(labels) == start)
    if not len(candidates):
        raise ValueError(f"{domain.name}: no {config.split} images of {start} to start from")
    rng = np.random.default_rng(config.seed)
    picked = rng.choice(candidates, size=min(config.per_domain, len(candidates)), replace=False)
    strength = config.strength or DEFAULT_STRENGTH
    sources, results, heat, correlations, ssims = [], [], [], [], []
    for i, index in enumerate(tqdm(picked, desc=f"counterfactuals {domain.name}", leave=False)):
        source = Image.fromarray(part.images[index])
        request = CounterfactualRequest(domain.name, target, strength=strength, seed=config.seed + i)
        info = {"file": f"{domain.name}/{part.frame['file'].iloc[index]}", "label": start, "split": config.split}
        result = make_counterfactual(engine, source, request, info)
        (item,) = result.items
        sources.append(result.source)
        results.append(item.image.image)
        heat.append(item.heat_map)
        correlations.append(item.kept.pixel_correlation)
        ssims.append(item.kept.ssim_outside_change)

    def read(images: list[Image.Image]) -> float:
        return float(np.mean([evaluator.classes[i] == target for i in evaluator.logits(images).argmax(1).tolist()]))

    measure = PairMeasure(
        domain=domain.name, source_class=start, target=target, n=len(picked), strength=strength,
        sources_read_as_target=read(sources), results_read_as_target=read(results),
        round_trip_read_as_target=read(round_trip(engine, sources)),
        real_target_recall=real.per_class_recall[evaluator.classes.index(target)],
        median_pixel_correlation=float(np.median(correlations)), median_ssim_outside_change=float(np.median(ssims)),
    )  # fmt: skip
    picture = image_grid(
        [sources[:PICTURED], results[:PICTURED], heat[:PICTURED]],
        [f"real {start}", f"as {target} (synthetic)", "what changed"],
        size=128,
    )
    return measure, picture


def round_trip(engine: MedSynth, images: list[Image.Image]) -> list[Image.Image]:
    """The images through the pack's autoencoder and back, in their own colour mode."""
    arrays = np.stack([np.asarray(image.convert("RGB")) for image in images])
    return [Image.fromarray(a).convert(images[0].mode) for a in engine.generator.reconstruct(arrays)]


def evaluate_counterfactuals(config: CounterfactualEvaluationConfig, registry: Registry) -> Path:
    if config.split not in ("val", "test"):
        raise ValueError(f"split must be val or test; got {config.split!r}")
    engine = MedSynth(registry, config.pack or selected_pack_name())
    pairs = [tuple(t.split("/", 1)) for t in config.targets] or default_targets(registry, engine.available_domains)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    measures = []
    for name, target in pairs:
        domain = engine.domain(name)
        measure, picture = measure_domain(engine, domain, domain.get_class(target).code, config)
        picture.save(out / f"{name}_pairs.jpg", quality=90)
        measures.append(measure)
    (out / "results.json").write_text(
        json.dumps(
            {"config": {k: str(v) for k, v in asdict(config).items()}, "domains": [asdict(m) for m in measures]},
            indent=2,
        )
    )
    (out / "REPORT.md").write_text(render_report(measures, config))
    return out / "REPORT.md"


def render_report(measures: list[PairMeasure], config: CounterfactualEvaluationConfig) -> str:
    lines = [
        "# Counterfactual pairs: what the disease changes", "",
        f"Real {config.split} images of each domain's normal or benign class, redrawn as the target class (SDEdit, "
        "the app's strength), read by the domain's independent evaluator. A pair works when the results are read as "
        f"the target at least as often as min(0.5, the evaluator's recall on real images of it), at least "
        f"{MIN_MOVED_GAIN:.0%} more often than the sources, and keep the source's structure (median pixel "
        f"correlation at 64 px ≥ {MIN_CORRELATION}). The round-trip column is the control: the sources only encoded "
        "and decoded, so a class the decoder's softness alone moves shows there, not as a finding drawn in.", "",
        "| domain | pair | n | strength | sources read as target | round trip read as target | results read as target "
        "| bar | real recall of target | pixel correlation (median) | SSIM outside the change (median) | works |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]  # fmt: skip
    for m in measures:
        lines.append(
            f"| {m.domain} | {m.source_class} → {m.target} | {m.n} | {m.strength:g} | {m.sources_read_as_target:.2f} | "
            f"{m.round_trip_read_as_target:.2f} | {m.results_read_as_target:.2f} | {m.bar:.2f} | {m.real_target_recall:.2f} | {m.median_pixel_correlation:.2f} "
            f"| {m.median_ssim_outside_change:.2f} | {'✅' if m.passes else '❌'} |"
        )
    lines += [""] + [
        f"## {m.domain}: {m.source_class} → {m.target}\n\n![{m.domain}]({m.domain}_pairs.jpg)\n" for m in measures
    ]
    targets = ",".join(f"{m.domain}/{m.target}" for m in measures)
    lines += ["Reproduce: `python -m medsynth evaluate-counterfactuals --targets " + targets +
              f" --per-domain {config.per_domain} --split {config.split}" +
              (f" --evaluators {config.evaluators}" if config.evaluators else "") + f" --out {config.out}`"]  # fmt: skip
    return "\n".join(lines) + "\n"
