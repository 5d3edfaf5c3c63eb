"""`python -m medsynth sweep-sampling`: a pack's generation settings (guidance, steps) chosen on val.

Every setting generates the same seeds, the same number per class, from the bare base and from base + LoRA;
the primary evaluator's macro-F1 and the Fréchet distance to the real val images (beside the class-matched
train ↔ val floor) say what each setting buys. Guidance trades one for the other: strong guidance makes every
image typical of its class (easy to recognise, far from the real spread), weak guidance the reverse.
Results are kept per setting, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from itertools import product
from pathlib import Path

from tqdm import tqdm

from medsynth.data.cache import load_domain_images
from medsynth.generation.engine import MedSynth
from medsynth.imaging import to_pil_images
from medsynth.paths import runs_dir
from medsynth.registry import Registry, selected_pack_name
from medsynth.research.config import PackEvaluationConfig, SamplingSweepConfig
from medsynth.research.evaluate_pack import domain_references, generate_set
from medsynth.research.evaluators import load_evaluator_panel
from medsynth.research.measures import (
    FeatureExtractor,
    class_matched_sample,
    evaluator_report,
    foreign_domain_share,
    frechet_distance,
    kernel_distance,
)
from medsynth.research.pictures import image_grid, rows_by_class, tradeoff_plot
from medsynth.research.reports import share_text

MODES = ("base", "lora")
# what makes a stored setting's numbers comparable with a new run's (the swept values themselves do not)
COMPARABLE = ("domain", "per_class", "seed", "pack", "evaluators", "reference_resolution")


def setting_key(mode: str, guidance: float, steps: int) -> str:
    return f"{mode}_g{guidance:g}_s{steps}"


def _check(config: SamplingSweepConfig) -> None:
    unknown = sorted(set(config.modes) - set(MODES))
    if unknown or not config.modes:
        raise ValueError(f"modes must be among {', '.join(MODES)}; got {', '.join(unknown) or 'none'}")
    if not config.guidance or min(config.guidance) < 1 or max(config.guidance) > 30:
        raise ValueError("guidance scales must lie between 1 and 30")
    if not config.steps or min(config.steps) < 1 or max(config.steps) > 150:
        raise ValueError("step counts must lie between 1 and 150")
    if config.per_class < 2:
        raise ValueError("per_class must be at least 2 (a Fréchet distance needs a spread)")


def _stored(path: Path, settings: dict) -> dict:
    """Earlier results of the same comparison; anything else starts over."""
    earlier = json.loads(path.read_text()) if path.exists() else {}
    if any(earlier.get("config", {}).get(k) != settings[k] for k in COMPARABLE):
        return {"config": settings, "settings": {}}
    return {**earlier, "config": settings}


def sweep_sampling(config: SamplingSweepConfig, registry: Registry) -> Path:
    _check(config)
    pack = config.pack or selected_pack_name()
    engine = MedSynth(registry, pack)
    codes = list(registry.get_domain(config.domain).class_codes)
    out = Path(config.out or runs_dir() / "sampling" / f"{pack}_{config.domain}")
    out.mkdir(parents=True, exist_ok=True)
    settings = {k: str(v) for k, v in asdict(replace(config, pack=pack)).items()}
    results = _stored(out / "results.json", settings)

    size = config.reference_resolution or engine.generator.resolution
    data = load_domain_images(registry.get_domain(config.domain), size)
    val, train = data.split("val"), data.split("train")  # choices are made on val; test is for the pack's report
    features = FeatureExtractor(engine.device)
    real_features = features(val.images)
    floor = frechet_distance(
        real_features, features(train.images[class_matched_sample(list(train.frame["label"]), config.per_class)])
    )
    results["frechet_floor_train_vs_val"] = floor
    names = [*registry.trained_domains(pack), config.domain]
    references = domain_references([registry.get_domain(n) for n in names], size, features)
    evaluator = next(iter(load_evaluator_panel(config.domain, config.evaluators).values()))
    real = (to_pil_images(val.images), list(val.frame["label"]))
    results["evaluator_real_val_macro_f1"] = evaluator_report(evaluator, *real).macro_f1

    todo = [
        s for s in product(config.modes, config.guidance, config.steps) if setting_key(*s) not in results["settings"]
    ]
    for mode, guidance, steps in tqdm(todo, desc=f"sampling settings ({config.domain})"):
        started = time.perf_counter()
        request = PackEvaluationConfig(per_class=config.per_class, seed=config.seed, steps=steps, guidance=guidance)
        images, labels, _ = generate_set(engine, config.domain, codes, mode, request)
        generated = features(images)
        distance = frechet_distance(real_features, generated)
        key = setting_key(mode, guidance, steps)
        results["settings"][key] = {
            "mode": mode,
            "guidance": guidance,
            "steps": steps,
            "n_images": len(images),
            "evaluator_macro_f1": evaluator_report(evaluator, images, labels).macro_f1,
            "frechet_distance": distance,
            "frechet_excess": distance - floor,
            "kid": kernel_distance(real_features, generated)[0],
            "foreign_domain_share": foreign_domain_share(generated, config.domain, references),
            "seconds": round(time.perf_counter() - started, 1),
        }
        rows, row_labels = rows_by_class(codes, real, {f"{mode} g{guidance:g}": (images, labels)})
        image_grid(rows, row_labels, size=max(128, engine.generator.resolution)).save(
            out / f"grid_{key}.jpg", quality=90
        )
        # written after every setting, so an interrupted sweep resumes
        (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    points = list(results["settings"].values())
    tradeoff_plot(points, f"{config.domain} on val: {pack} pack", out / "tradeoff.png")
    (out / "REPORT.md").write_text(render_sweep(results))
    return out / "REPORT.md"


def render_sweep(results: dict) -> str:
    config = results["config"]
    lines = [
        f"# Sampling settings of {config['pack']} for {config['domain']}, on val",
        "",
        f"{config['per_class']} images per class and setting, seeds from {config['seed']}; real val images scored by the "
        f"same evaluator: macro-F1 {results['evaluator_real_val_macro_f1']:.3f}; Fréchet floor (train ↔ val, "
        f"{config['per_class']} per class) {results['frechet_floor_train_vs_val']:.1f}.",
        "",
        "![F1 against Fréchet excess](tradeoff.png)",
        "",
        "| mode | guidance | steps | evaluator macro-F1 | Fréchet | − floor | KID | another domain's look | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sorted(results["settings"].values(), key=lambda s: (s["mode"], s["steps"], s["guidance"])):
        lines.append(
            f"| {s['mode']} | {s['guidance']:g} | {s['steps']} | {s['evaluator_macro_f1']:.3f} | "
            f"{s['frechet_distance']:.1f} | {s['frechet_excess']:.1f} | {s['kid']:.3f} | "
            f"{share_text(s.get('foreign_domain_share'))} | {s['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"
