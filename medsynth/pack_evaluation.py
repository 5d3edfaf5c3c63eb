"""`python -m medsynth evaluate-pack`: the measured evaluation of a model pack, as a report with pictures.

Per domain, on the real test split: classifier accuracy / balanced accuracy / macro-F1, CLIP
zero-shot accuracy; generated images (the same number per class) from (a) the bare shared base,
(b) base + domain LoRA, (c) base + LoRA + validation loop, each measured by the independent
evaluator (macro-F1, confusion matrix), Fréchet distance and KID against real test images
(beside the real-train vs real-test floor), CLIP score, and a nearest-training-image check.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .autoencoder_evaluation import autoencoder_ceiling
from .engine import GenerationRequest, MedSynth
from .evaluation import FeatureExtractor, confusion_plot, evaluator_report, frechet_distance, image_grid, kernel_distance, nearest_training_images, to_pil_images
from .metrics import classification_metrics
from .prompts import class_prompt
from .registry import PROJECT_ROOT, load_registry, selected_pack_name
from .training.cache import load_domain_images
from .training.evaluator import evaluator_degrade, load_evaluator_panel

logger = logging.getLogger(__name__)

SOURCE_COLUMN = "source"  # metadata column naming where an image came from (chest_xray: paediatric vs adult collections)
MODES = {"base": "bare shared base", "lora": "base + domain LoRA", "validated": "base + LoRA + validation loop"}


@dataclass
class PackEvaluationConfig:
    """Evaluate a pack on the real test split (needs the evaluators: `medsynth train evaluator`)."""

    pack: str = ""  # default: $MEDSYNTH_PACK or mini
    domains: tuple[str, ...] = ()  # default: every available domain
    per_class: int = 50
    steps: int = 0  # 0: the pack's default
    guidance: float = 0.0  # 0: the pack's default
    threshold: float = 0.5
    max_rounds: int = 3
    seed: int = 1000
    split: str = "test"  # "val" to make choices (LoRA length, guidance…) without looking at the test split
    out: Path = field(default_factory=lambda: PROJECT_ROOT / "reports" / "mini")


def accuracy_by_group(frame, correct: np.ndarray) -> list[dict]:
    """The classifier's accuracy per (source, label): a source that stands in for a label shows up here."""
    groups = frame.assign(correct=correct).groupby([SOURCE_COLUMN, "label"], sort=True)["correct"]
    return [{"source": source, "label": label, "n": int(n), "accuracy": float(acc)}
            for (source, label), n, acc in zip(groups.size().index, groups.size(), groups.mean())]  # fmt: skip


def generate_set(engine: MedSynth, domain: str, codes: list[str], mode: str, config: PackEvaluationConfig) -> tuple[list[Image.Image], list[str], dict]:
    images, labels, accepted, attempts = [], [], 0, 0
    for k, code in enumerate(codes):
        request = GenerationRequest(
            domain=domain, label=code, n=config.per_class, seed=config.seed + 10_000 * k,
            steps=config.steps or None, guidance=config.guidance or None, use_adapter=mode != "base", validate=mode == "validated",
            threshold=config.threshold, max_rounds=config.max_rounds,
        )  # fmt: skip
        result = engine.run(request)
        images += [i.image for i in result.images]
        labels += [code] * len(result.images)
        accepted += sum(bool(a.accepted) for a in result.attempts)
        attempts += len(result.attempts)
    return images, labels, {"generated": attempts, "classifier_agreement": accepted / max(attempts, 1)}


def evaluate_domain(engine: MedSynth, name: str, config: PackEvaluationConfig, features: FeatureExtractor, out: Path) -> dict:
    registry = engine.registry
    domain = registry.get_domain(name)
    codes = list(domain.class_codes)
    data = load_domain_images(name, engine.generator.resolution)
    test, train = data.split(config.split), data.split("train")  # `test`: the held-out reference split
    test_images = to_pil_images(test.images)
    y_test = [codes.index(c) for c in test.frame["label"]]
    report: dict = {"domain": name, "n_test": len(test), "classes": codes, "base_unconditional": name in engine.generator.base_guided}

    # the pack's own classifier and CLIP on real test images
    classifier = engine.classifiers[name]
    predicted = [codes.index(s.predicted) for s in classifier.score(test_images)]
    report["classifier_real_test"] = classification_metrics(y_test, predicted, len(codes))
    if SOURCE_COLUMN in test.frame.columns:
        report["classifier_by_source"] = accuracy_by_group(test.frame, np.array(predicted) == np.array(y_test))
    clip = engine.clips[name]
    class_emb = clip.embed_texts([class_prompt(domain, c) for c in codes])
    image_emb = clip.embed_images(test_images)
    report["clip_zero_shot_accuracy"] = float(np.mean((image_emb @ class_emb.T).argmax(1).numpy() == np.array(y_test)))

    real_test_feats = features(test.images)
    train_feats = features(train.images)
    floor_index = np.random.default_rng(0).choice(len(train), size=min(len(train), len(codes) * config.per_class), replace=False)
    report["frechet_floor_train_vs_test"] = frechet_distance(real_test_feats, train_feats[floor_index])
    report["kid_floor_train_vs_test"] = kernel_distance(real_test_feats, train_feats[floor_index])[0]
    panel = load_evaluator_panel(name)  # the primary evaluator first; its confusion matrices are the pictures
    evaluator, *others = panel.values()
    report["evaluator_panel_seeds"] = list(panel)
    report["evaluator_degrade"] = evaluator_degrade(name)
    predicted = evaluator.logits(test_images).argmax(1).tolist()
    report["evaluator_real_test"] = classification_metrics(y_test, predicted, len(codes))
    reconstructed = engine.generator.reconstruct(test.images)  # the most any generated image can carry
    report["autoencoder_ceiling"] = autoencoder_ceiling(reconstructed, test.images, list(test.frame["label"]), evaluator, real_test_feats, features)

    grids = {}
    for mode in MODES:
        started = time.perf_counter()
        images, labels, generation = generate_set(engine, name, codes, mode, config)
        feats = features(images)
        ev = evaluator_report(evaluator, images, labels)
        own_prompt = class_emb[[codes.index(lab) for lab in labels]]
        cosines = (clip.embed_images(images) * own_prompt).sum(dim=1).tolist() if images else []
        memo = nearest_training_images(feats, train_feats)
        report[mode] = {
            **generation,
            "n_images": len(images),
            "evaluator_macro_f1": ev.macro_f1,
            "evaluator_macro_f1_panel": [ev.macro_f1] + [evaluator_report(e, images, labels).macro_f1 for e in others],
            "evaluator_accuracy": ev.accuracy,
            "evaluator_per_class_recall": dict(zip(codes, ev.per_class_recall)),
            "frechet_distance": frechet_distance(real_test_feats, feats),
            "kid": kernel_distance(real_test_feats, feats)[0],
            "clip_score": float(np.mean(cosines)) if cosines else None,
            "memorisation_median": memo.median,
            "memorisation_max": memo.max,
            "seconds": time.perf_counter() - started,
        }
        confusion_plot(ev.confusion, codes, f"{name}: {MODES[mode]} (evaluator)", out / f"{name}_confusion_{mode}.png")
        grids[mode] = (images, labels)
        if mode == "lora":
            pairs = [[images[g], Image.fromarray(train.images[t])] for g, t, _ in memo.pairs]
            image_grid(pairs, [f"cos {s:.3f}" for _, _, s in memo.pairs], label_width=90).save(out / f"{name}_nearest_training.png")
    rows, row_labels = [], []
    for code in codes:
        real = [test_images[i] for i, c in enumerate(test.frame["label"]) if c == code][:6]
        rows += [real, [img for img, lab in zip(*grids["lora"]) if lab == code][:6], [img for img, lab in zip(*grids["base"]) if lab == code][:6]]
        row_labels += [f"{code}: real", f"{code}: LoRA", f"{code}: base"]
    image_grid(rows, row_labels, label_width=150).save(out / f"{name}_grid.png")
    return report


def evaluate_pack(config: PackEvaluationConfig) -> Path:
    """Evaluate the chosen domains; their results join those of earlier runs in the same folder."""
    if config.split not in ("val", "test"):
        raise ValueError(f"split must be val or test; got {config.split!r}")
    registry = load_registry()
    engine = MedSynth(registry, config.pack or selected_pack_name())
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    features = FeatureExtractor(engine.device)
    domains = list(config.domains) or engine.available_domains
    if not domains:
        raise ValueError(f"pack {engine.pack.name} has no available domain to evaluate")
    for name in tqdm(domains, desc="evaluating domains"):
        started = time.perf_counter()
        result = evaluate_domain(engine, name, config, features, out)
        result["wall_time_s"] = round(time.perf_counter() - started, 1)
        results = merge_results(out / "results.json", engine.pack.name, config, name, result, order=list(registry.domains), pack_settings=pack_settings(engine.pack))
    (out / "REPORT.md").write_text(render_report(results))
    return out / "REPORT.md"


# what makes two runs' numbers comparable (the output folder and the domain list do not)
COMPARABLE = ("split", "per_class", "steps", "guidance", "threshold", "max_rounds", "seed")


def _settings(config: PackEvaluationConfig) -> dict[str, str]:
    return {k: str(v) for k, v in asdict(config).items() if k != "domains"}


def reproduce_command(settings: dict[str, str]) -> str:
    """The evaluate-pack command line that repeats a report (only the options that differ from the defaults)."""
    from .cli import changed_options, command_line

    return command_line("python -m medsynth evaluate-pack", changed_options(settings, _settings(PackEvaluationConfig()), COMPARABLE))


def pack_settings(pack) -> dict:
    """The registry's generation settings of a pack: two reports with different ones do not compare."""
    return {"default_steps": pack.default_steps, "default_guidance": pack.default_guidance}


def merge_results(
    path: Path, pack: str, config: PackEvaluationConfig, name: str, result: dict, order: list[str] = (), pack_settings: dict | None = None,
) -> dict:  # fmt: skip
    """Read-modify-write of results.json: one domain at a time, so domains can be evaluated in separate runs.

    Domains are kept in `order` (the registry's), however the runs were split; others go last."""
    results = json.loads(path.read_text()) if path.exists() else {}
    settings = _settings(config)
    earlier = {**_settings(PackEvaluationConfig()), **results.get("config", {})}  # older reports lack newer fields
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


def panel_f1(mode_result: dict) -> list[float]:
    """Generated-image macro-F1 under every evaluator of the panel (the primary alone in older reports)."""
    return mode_result.get("evaluator_macro_f1_panel") or [mode_result["evaluator_macro_f1"]]


def panel_mean(mode_result: dict) -> float:
    return float(np.mean(panel_f1(mode_result)))


def f1_text(mode_result: dict) -> str:
    """The panel's mean F1, with its lowest and highest where there is more than one evaluator."""
    values = panel_f1(mode_result)
    mean = panel_mean(mode_result)
    return f"{mean:.3f}" if len(values) == 1 else f"{mean:.3f} ({min(values):.3f}–{max(values):.3f})"


def lora_verdict(base: dict, lora: dict) -> tuple[bool, int, int]:
    """(LoRA better on both, evaluators preferring it, panel size): Fréchet distance lower, and F1 higher
    under every evaluator, so that no verdict rests on one evaluator's quirks."""
    pairs = list(zip(panel_f1(base), panel_f1(lora)))
    preferring = sum(l > b for b, l in pairs)
    return lora["frechet_distance"] < base["frechet_distance"] and preferring == len(pairs), preferring, len(pairs)


BARS = {"dermatology": 0.75, "brain_mri": 0.90, "chest_xray": 0.85, "ophthalmology": 0.55}
PUBLISHED_F1 = 0.6727  # SD+LoRA PathMNIST generated-image F1


def render_report(results: dict) -> str:
    split = results["config"].get("split", "test")
    lines = [f"# Evaluation of the `{results['pack']}` pack", "", f"Real {split} split of each domain; generated images: "
             f"{results['config']['per_class']} per class, seeds fixed. Reproduce: `{reproduce_command(results['config'])}`.", ""]  # fmt: skip
    if results.get("pack_settings"):
        p = results["pack_settings"]
        lines += [f"Pack settings: {p['default_steps']} steps, guidance {p['default_guidance']}.", ""]
    degrade = {name: r["evaluator_degrade"] for name, r in results["domains"].items() if "evaluator_degrade" in r}
    if degrade:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in degrade.items())
        lines += [f"Evaluators (EfficientNet-Lite0, measurement only): share of training images slightly blurred or noised: {shares}.", ""]
    panels = {name: len(r["evaluator_panel_seeds"]) for name, r in results["domains"].items() if len(r.get("evaluator_panel_seeds", [])) > 1}
    if panels:
        sizes = ", ".join(f"{name} {n}" for name, n in panels.items())
        lines += [f"Evaluator panel (the same recipe, other seeds): {sizes} evaluators. Generated-image F1 is their mean, "
                  "with the lowest and highest in brackets; the confusion matrices are the primary evaluator's.", ""]  # fmt: skip
    lines += [f"## Real {split} images", "", "| domain | classifier acc | bar | balanced acc | macro-F1 | CLIP zero-shot | evaluator acc |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in results["domains"].items():
        c = r["classifier_real_test"]
        bar = BARS.get(name)
        lines.append(f"| {name} | {c['accuracy']:.3f} | {bar if bar else '–'} {'✅' if bar and c['accuracy'] >= bar else ('❌' if bar else '')} | {c['balanced_accuracy']:.3f} | {c['macro_f1']:.3f} | {r['clip_zero_shot_accuracy']:.3f} | {r['evaluator_real_test']['accuracy']:.3f} |")
    by_source = {name: r["classifier_by_source"] for name, r in results["domains"].items() if r.get("classifier_by_source")}
    for name, groups in by_source.items():
        lines += ["", f"Classifier accuracy on {name} by source and label (a source that comes with one label can stand in for it):", "",
                  "| source | label | images | accuracy |", "|---|---|---:|---:|"]  # fmt: skip
        lines += [f"| {g['source']} | {g['label']} | {g['n']} | {g['accuracy']:.2f} |" for g in groups]
    lines += ["", "## Generated images", "", "| domain | mode | evaluator macro-F1 | Fréchet (EffNet-Lite0) | floor train↔test | KID | CLIP score | classifier agreement | NN cosine median / max |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results["domains"].items():
        for mode, label in MODES.items():
            m = r[mode]
            lines.append(f"| {name} | {label} | {f1_text(m)} | {m['frechet_distance']:.1f} | {r['frechet_floor_train_vs_test']:.1f} | {m['kid']:.4f} | {m['clip_score']:.3f} | {m['classifier_agreement']:.0%} of {m['generated']} | {m['memorisation_median']:.3f} / {m['memorisation_max']:.3f} |")
    ceilings = {name: r["autoencoder_ceiling"] for name, r in results["domains"].items() if "autoencoder_ceiling" in r}
    if ceilings:
        lines += ["", "## What the autoencoder lets through", "",
                  f"The real {split} images themselves, encoded and decoded: no generated image can carry more detail or class "
                  "evidence than this (the Fréchet distance compares each image with its own reconstruction, so it flatters).", "",
                  "| domain | evaluator macro-F1 real → reconstructed | Fréchet reconstructed ↔ real | base + LoRA, same evaluator |",
                  "|---|---|---:|---|"]  # fmt: skip
        for name, ceiling in ceilings.items():
            r = results["domains"][name]
            real_f1 = r["evaluator_real_test"]["macro_f1"]
            lines.append(f"| {name} | {real_f1:.3f} → {ceiling['evaluator_macro_f1']:.3f} | {ceiling['frechet_distance']:.1f} | "
                         f"F1 {r['lora']['evaluator_macro_f1']:.3f}, Fréchet {r['lora']['frechet_distance']:.1f} |")  # fmt: skip
    lines += ["", "## Does the LoRA earn its place?", "", "| domain | LoRA guided against | Fréchet base → LoRA | evaluator F1 base → LoRA | evaluators preferring the LoRA | LoRA better on both | F1 ≥ 0.6727 |", "|---|---|---|---|---|---|---|"]
    for name, r in results["domains"].items():
        b, l = r["base"], r["lora"]
        both, preferring, n = lora_verdict(b, l)
        against = "bare base's unconditional" if r.get("base_unconditional") else "its own unconditional"
        lines.append(f"| {name} | {against} | {b['frechet_distance']:.1f} → {l['frechet_distance']:.1f} | {f1_text(b)} → {f1_text(l)} | "
                     f"{preferring} of {n} | {'✅' if both else '❌'} | {'✅' if panel_mean(l) >= PUBLISHED_F1 else '❌'} |")  # fmt: skip
    lines += ["", "## Pictures", ""]
    for name in results["domains"]:
        lines += [f"### {name}", "", f"Real (test) vs generated, per class: ![{name} grid]({name}_grid.png)", "",
                  f"Evaluator confusion, base + LoRA: ![{name} confusion]({name}_confusion_lora.png)", "",
                  f"Closest generated ↔ training pairs (memorisation check): ![{name} nearest]({name}_nearest_training.png)", ""]  # fmt: skip
    return "\n".join(lines)
