"""`python -m medsynth evaluate-pack`: the measured evaluation of a model pack, as a report with pictures.

Per domain, on the real test split: classifier accuracy / balanced accuracy / macro-F1, CLIP
zero-shot accuracy; generated images (the same number per class) from (a) the bare shared base,
(b) base + domain LoRA, (c) base + LoRA + validation loop, each measured by the independent
evaluator (macro-F1, confusion matrix), Fréchet distance and KID against real test images
(beside the real-train vs real-test floor, train drawn with the generated class mix), CLIP score, a nearest-training-image
check, and the share of images that look like another domain's.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from PIL import Image
from tqdm import tqdm

from medsynth.configs import changed_options, command_line, option_value
from medsynth.data.cache import load_domain_images, sampled_images
from medsynth.generation.engine import GenerationRequest, MedSynth
from medsynth.generation.prompts import class_prompt
from medsynth.generation.scoring import ClassifierScorer
from medsynth.imaging import to_pil_images
from medsynth.models.evaluator import evaluator_degrade, evaluators_dir, panel_folders, weights_fingerprint
from medsynth.models.metrics import classification_metrics, per_class_recall
from medsynth.registry import Domain, Registry, selected_pack_name
from medsynth.research.config import PackEvaluationConfig
from medsynth.research.evaluate_autoencoder import autoencoder_ceiling
from medsynth.research.evaluators import load_evaluator, load_evaluator_panel
from medsynth.research.measures import (
    FeatureExtractor,
    class_matched_sample,
    evaluator_report,
    foreign_domain_share,
    frechet_distance,
    kernel_distance,
    nearest_training_images,
)
from medsynth.research.pack_results import MODES, PackEvaluation
from medsynth.research.pictures import confusion_plot, image_grid, rows_by_class
from medsynth.research.reports import render_pack_report

logger = logging.getLogger(__name__)


def accuracy_by_group(frame, correct: np.ndarray, column: str) -> list[dict]:
    """The classifier's accuracy per (source, label): a source that stands in for a label shows up here."""
    groups = frame.assign(correct=correct).groupby([column, "label"], sort=True)["correct"]
    return [{"source": source, "label": label, "n": int(n), "accuracy": float(acc)}
            for (source, label), n, acc in zip(groups.size().index, groups.size(), groups.mean())]  # fmt: skip


def generate_set(
    engine: MedSynth, domain: str, codes: list[str], mode: str, config: PackEvaluationConfig
) -> tuple[list[Image.Image], list[str], dict]:
    images, labels, accepted, attempts = [], [], 0, 0
    for k, code in enumerate(codes):
        request = GenerationRequest(
            domain=domain, label=code, n=config.per_class, seed=config.seed + 10_000 * k,
            steps=config.steps or None, guidance=config.guidance or None, use_adapter=mode != "base", validate=mode == "validated",
            threshold=config.threshold or None, max_rounds=config.max_rounds,
        )  # fmt: skip
        result = engine.run(request)
        images += [i.image for i in result.images]
        labels += [code] * len(result.images)
        accepted += sum(bool(a.accepted) for a in result.attempts)
        attempts += len(result.attempts)
    return images, labels, {"generated": attempts, "classifier_agreement": accepted / max(attempts, 1)}


REFERENCES_PER_DOMAIN = 200


def domain_references(domains: list[Domain], size: int, features: FeatureExtractor) -> dict[str, torch.Tensor]:
    """Features of a fixed random sample of each domain's real train images: what `foreign_domain_share` compares
    generated images with."""
    references = {}
    for domain in {d.name: d for d in domains}.values():  # once each, in order
        references[domain.name] = features(sampled_images(domain, size, "train", REFERENCES_PER_DOMAIN))
    return references


def _set_roots(evaluators: tuple[Path, ...]) -> list[Path]:
    return [Path(root) for root in evaluators] or [evaluators_dir()]


def evaluator_sets(domain: str, evaluators: tuple[Path, ...]) -> dict[str, dict[int, ClassifierScorer]]:
    """Each evaluator set's panel for the domain, by the set's folder name, in the order given."""
    roots = _set_roots(evaluators)
    names = [root.name for root in roots]
    if len(set(names)) != len(names):
        names = [str(root) for root in roots]
    return {name: load_evaluator_panel(domain, root) for name, root in zip(names, roots)}


def evaluate_domain(
    engine: MedSynth,
    name: str,
    config: PackEvaluationConfig,
    features: FeatureExtractor,
    references: dict[str, torch.Tensor],
    out: Path,
) -> dict:
    registry = engine.registry
    domain = registry.get_domain(name)
    codes = list(domain.class_codes)
    resolution = engine.generator.resolution
    data = load_domain_images(domain, config.reference_resolution or resolution)
    test, train = data.split(config.split), data.split("train")  # `test`: the held-out reference split
    test_images = to_pil_images(test.images)
    y_test = [codes.index(c) for c in test.frame["label"]]
    report: dict = {
        "domain": name,
        "n_test": len(test),
        "classes": codes,
        "base_unconditional": name in engine.generator.base_guided,
        "guidance": config.guidance or registry.default_guidance(engine.pack.name, name),
        "resolution": resolution,
        "reference_resolution": test.images.shape[1],
    }

    # the pack's own classifier and CLIP on real test images
    classifier = engine.classifiers[name]
    predicted = [codes.index(s.predicted) for s in classifier.score(test_images)]
    report["classifier_real_test"] = classification_metrics(y_test, predicted, len(codes))
    if domain.source_column in test.frame.columns:
        report["classifier_by_source"] = accuracy_by_group(
            test.frame, np.array(predicted) == np.array(y_test), domain.source_column
        )
    share = domain.sources_for(engine.pack.name).probe_accuracy_share
    if config.probes and share:  # the bar: a share of what an ImageNet-initialised network reaches on the same images
        report["probe_accuracy"] = evaluator_report(
            load_evaluator(name, config.probes), test_images, list(test.frame["label"])
        ).accuracy
        report["probe_accuracy_share"] = share
        report["accuracy_bar"] = share * report["probe_accuracy"]
    clip = engine.clips[name]
    class_emb = clip.embed_texts([class_prompt(domain, c) for c in codes])
    image_emb = clip.embed_images(test_images)
    report["clip_zero_shot_accuracy"] = float(np.mean((image_emb @ class_emb.T).argmax(1).numpy() == np.array(y_test)))

    real_test_feats = features(test.images)
    train_feats = features(train.images)
    floor_index = class_matched_sample(list(train.frame["label"]), config.per_class)  # the generated sets' mix
    report["frechet_floor_train_vs_test"] = frechet_distance(real_test_feats, train_feats[floor_index])
    report["kid_floor_train_vs_test"] = kernel_distance(real_test_feats, train_feats[floor_index])[0]
    sets = evaluator_sets(name, config.evaluators)  # the primary set first, its primary evaluator first
    panel = next(iter(sets.values()))
    evaluator = next(iter(panel.values()))
    report["evaluator_panel_seeds"] = list(panel)
    report["evaluator_degrade"] = evaluator_degrade(name, _set_roots(config.evaluators)[0])
    predicted = evaluator.logits(test_images).argmax(1).tolist()
    report["evaluator_real_test"] = {
        **classification_metrics(y_test, predicted, len(codes)),
        # beside each generated set's per-class recall: a class is judged against what the evaluator sees in real ones
        "per_class_recall": dict(zip(codes, per_class_recall(y_test, predicted, len(codes)))),
    }
    report["evaluator_sets"] = {
        set_name: {
            "degrade": evaluator_degrade(name, root),
            "seeds": list(set_panel),
            "real_macro_f1": [evaluator_report(e, test_images, list(test.frame["label"])).macro_f1 for e in set_panel.values()],
            "weights": [weights_fingerprint(f) for f in panel_folders(name, root).values()],
        }
        for (set_name, set_panel), root in zip(sets.items(), _set_roots(config.evaluators))
    }  # fmt: skip
    native = test if test.images.shape[1] == resolution else load_domain_images(domain, resolution).split(config.split)
    reconstructed = engine.generator.reconstruct(native.images)  # the most any generated image can carry
    report["autoencoder_ceiling"] = autoencoder_ceiling(
        reconstructed, native.images, list(test.frame["label"]), evaluator, real_test_feats, features
    )

    grids = {}
    thumb = max(128, resolution)  # pictures at full size: a finding must be visible in the report too
    for mode in config.modes:
        started = time.perf_counter()
        images, labels, generation = generate_set(engine, name, codes, mode, config)
        feats = features(images)
        # every evaluator of every set scores the images once; the primary set's first evaluator leads the report
        set_reports = {set_name: [evaluator_report(e, images, labels) for e in set_panel.values()]
                       for set_name, set_panel in sets.items()}  # fmt: skip
        panel_reports = next(iter(set_reports.values()))
        ev = panel_reports[0]
        own_prompt = class_emb[[codes.index(lab) for lab in labels]]
        cosines = (clip.embed_images(images) * own_prompt).sum(dim=1).tolist() if images else []
        memo = nearest_training_images(feats, train_feats)
        report[mode] = {
            **generation,
            "n_images": len(images),
            # the validation loop keeps only accepted images: classes the classifier rarely accepts come back thin
            "images_per_class": dict(zip(codes, ev.confusion.sum(axis=1).tolist())),
            "evaluator_macro_f1": ev.macro_f1,
            "evaluator_macro_f1_panel": [r.macro_f1 for r in panel_reports],
            "evaluator_accuracy": ev.accuracy,
            "evaluator_per_class_recall": dict(zip(codes, ev.per_class_recall)),
            "frechet_distance": frechet_distance(real_test_feats, feats),
            "kid": kernel_distance(real_test_feats, feats)[0],
            "clip_score": float(np.mean(cosines)) if cosines else None,
            "memorisation_median": memo.median,
            "memorisation_max": memo.max,
            "foreign_domain_share": foreign_domain_share(feats, name, references) if images else None,
            "seconds": time.perf_counter() - started,
        }
        for set_name, reports in set_reports.items():
            report["evaluator_sets"][set_name][mode] = [r.macro_f1 for r in reports]
        confusion_plot(ev.confusion, codes, f"{name}: {MODES[mode]} (evaluator)", out / f"{name}_confusion_{mode}.png")
        grids[mode] = (images, labels)
        if mode == "lora":
            pairs = [[images[g], to_pil_images(train.images[t : t + 1])[0]] for g, t, _ in memo.pairs]
            image_grid(pairs, [f"cos {s:.3f}" for _, _, s in memo.pairs], size=thumb, label_width=90).save(
                out / f"{name}_nearest_training.png"
            )
    rows, row_labels = rows_by_class(
        codes, (test_images, list(test.frame["label"])), {"LoRA": grids["lora"], "base": grids["base"]}
    )
    # JPEG: a grid of 8 classes × 3 rows of 128 px photographs is 2-3 MB as PNG
    image_grid(rows, row_labels, size=thumb, label_width=150).save(out / f"{name}_grid.jpg", quality=92)
    return report


def evaluate_pack(config: PackEvaluationConfig, registry: Registry) -> Path:
    """Evaluate the chosen domains; their results join those of earlier runs in the same folder."""
    if config.split not in ("val", "test"):
        raise ValueError(f"split must be val or test; got {config.split!r}")
    if not {"base", "lora"} <= set(config.modes) <= set(MODES):
        raise ValueError(f"modes are base and lora, and validated if wanted; got {', '.join(config.modes) or 'none'}")
    engine = MedSynth(registry, config.pack or selected_pack_name())
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    features = FeatureExtractor(engine.device)
    domains = list(config.domains) or engine.available_domains
    if not domains:
        raise ValueError(f"pack {engine.pack.name} has no available domain to evaluate")
    size = config.reference_resolution or engine.generator.resolution
    names = [*registry.trained_domains(engine.pack.name), *domains]
    references = domain_references([registry.get_domain(n) for n in names], size, features)
    for name in tqdm(domains, desc="evaluating domains"):
        started = time.perf_counter()
        result = evaluate_domain(engine, name, config, features, references, out)
        result["wall_time_s"] = round(time.perf_counter() - started, 1)
        merge_results(
            out / "results.json",
            engine.pack.name,
            config,
            name,
            result,
            order=list(registry.domains),
            pack_settings=pack_settings(engine.pack),
        )
    return write_report(out, registry, config.baseline)


def write_report(out: Path, registry: Registry, baseline: Path | None = None) -> Path:
    """REPORT.md from the folder's results.json: what every run has merged so far, runs side by side included."""
    with results_lock(out / "results.json"):
        results = PackEvaluation.load(out / "results.json")
        sources = {name: registry.get_domain(name).sources_for(results.pack) for name in results.domains}
        share_bars = {name: source.f1_share_bar for name, source in sources.items()}
        earlier = PackEvaluation.load(baseline) if baseline else None
        pictures = {file.name for file in out.iterdir()}
        figures = {name: registry.get_domain(name).reference_f1 for name in results.domains if name in registry.domains}
        command = reproduce_command(results.settings)
        report = render_pack_report(results, command, share_bars, earlier, pictures, figures)
        (out / "REPORT.md").write_text(report)
    return out / "REPORT.md"


# what makes two runs' numbers comparable (the output folder and the domain list do not)
COMPARABLE = (
    "split",
    "per_class",
    "steps",
    "guidance",
    "threshold",
    "max_rounds",
    "seed",
    "evaluators",
    "reference_resolution",
)


def _settings(config: PackEvaluationConfig) -> dict[str, str]:
    return {k: option_value(v) for k, v in asdict(config).items() if k != "domains"}


def _as_option(text: str) -> str:
    """A stored setting as the command line writes it: results written before sequences were stored that way hold
    their Python repr, "(PosixPath('a'), PosixPath('b'))" for a,b."""
    return ",".join(re.findall(r"'([^']*)'", text)) if text.startswith("(") and text.endswith(")") else text


def reproduce_command(settings: dict[str, str]) -> str:
    """The evaluate-pack command line that repeats a report (only the options that differ from the defaults)."""
    shown = (*COMPARABLE, "modes")  # the modes measured: each mode's numbers do not depend on the others
    return command_line(
        "python -m medsynth evaluate-pack", changed_options(settings, _settings(PackEvaluationConfig()), shown)
    )


def pack_settings(pack) -> dict:
    """The registry's generation settings of a pack: two reports with different ones do not compare."""
    return {"default_steps": pack.default_steps, "default_guidance": pack.default_guidance}


def results_lock(path: Path) -> FileLock:
    """Held while results.json is read and rewritten: runs of different domains may finish at the same moment."""
    return FileLock(path.parent / f".{path.name}.lock")


def merge_results(
    path: Path, pack: str, config: PackEvaluationConfig, name: str, result: dict, order: list[str] = (), pack_settings: dict | None = None,
) -> dict:  # fmt: skip
    """Read-modify-write of results.json: one domain at a time, so domains can be evaluated in separate runs,
    side by side too.

    Domains are kept in `order` (the registry's), however the runs were split; others go last."""
    with results_lock(path):
        return _merge_locked(path, pack, config, name, result, order, pack_settings)


def _merge_locked(path, pack, config, name, result, order, pack_settings) -> dict:
    results = json.loads(path.read_text()) if path.exists() else {}
    settings = _settings(config)
    earlier = {**_settings(PackEvaluationConfig()), **results.get("config", {})}  # older reports lack newer fields
    earlier = {k: _as_option(v) for k, v in earlier.items()}
    same_pack = results.get("pack") == pack and results.get("pack_settings") == pack_settings
    if not same_pack or any(earlier[k] != settings[k] for k in COMPARABLE):  # never mix packs, splits or settings
        results = {"pack": pack, "domains": {}}
    results["config"] = settings
    results["pack_settings"] = pack_settings
    results["domains"][name] = result
    rank = {domain: i for i, domain in enumerate(order)}
    results["domains"] = dict(sorted(results["domains"].items(), key=lambda item: rank.get(item[0], len(rank))))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2, default=float))
    tmp.replace(path)
    return results
