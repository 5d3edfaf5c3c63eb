"""Markdown for the research commands' reports, kept apart from what they compute.

Every function here turns results (evaluate-pack's typed records, other commands' dicts and frames)
into text; none computes a measurement. The evaluator-panel helpers are shared with the model card.
"""

from __future__ import annotations

from typing import Collection, Mapping

import numpy as np
import pandas as pd

from medsynth.registry import ReferenceFigure
from medsynth.research.pack_results import MODES, DomainEvaluation, GeneratedSet, PackEvaluation


def f1_text(generated: GeneratedSet) -> str:
    """The panel's mean F1, with its lowest and highest where there is more than one evaluator."""
    values = generated.panel_f1
    mean = generated.panel_mean
    return f"{mean:.3f}" if len(values) == 1 else f"{mean:.3f} ({min(values):.3f}–{max(values):.3f})"


def share_text(share: float | None) -> str:
    """A share of images as a percentage; a dash where it was not measured (results of an older run)."""
    return "–" if share is None else f"{share:.0%}"


def lora_verdict(base: GeneratedSet, lora: GeneratedSet) -> tuple[bool, int, int]:
    """(LoRA better on both, evaluators preferring it, panel size): Fréchet distance lower, and F1 higher
    under every evaluator, so that no verdict rests on one evaluator's quirks."""
    pairs = list(zip(base.panel_f1, lora.panel_f1))
    preferring = sum(l > b for b, l in pairs)
    return lora.frechet_distance < base.frechet_distance and preferring == len(pairs), preferring, len(pairs)


def _accuracy_bar(r: DomainEvaluation, accuracy: float) -> str:
    """The classifier's bar cell: a share of the ImageNet probe's accuracy (older reports: a fixed number)."""
    if not r.accuracy_bar:
        return "–"
    how = f" ({r.probe_accuracy_share:g} × probe {r.probe_accuracy:.3f})" if r.probe_accuracy is not None else ""
    return f"{r.accuracy_bar:.3f}{how} {'✅' if accuracy >= r.accuracy_bar else '❌'}"


def published_mark(f1: float, figure: ReferenceFigure | None) -> str:
    if figure is None:
        return "no published figure for this data"
    return f"{'✅' if f1 >= figure.value else '❌'} ≥ {figure.value:.4f} ({figure.source})"


def _optional(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def render_pack_report(
    results: PackEvaluation | Mapping,
    command: str,
    share_bars: Mapping[str, float | None] | None = None,
    baseline: PackEvaluation | Mapping | None = None,
    pictures: Collection[str] | None = None,
    reference_f1: Mapping[str, ReferenceFigure | None] | None = None,
) -> str:
    """evaluate-pack's REPORT.md. `share_bars`: the share of an evaluator's F1 on real images its F1 on generated
    ones must reach (from the registry); `baseline`: an earlier pack's results measured the same way; `pictures`:
    the picture files the folder holds, where some were left out of it (default: all of them); `reference_f1`: a
    published generated-image F1 a domain's data carries in the registry (a PathMNIST figure marks PathMNIST only)."""
    results = results if isinstance(results, PackEvaluation) else PackEvaluation.from_json(results)
    if baseline is not None and not isinstance(baseline, PackEvaluation):
        baseline = PackEvaluation.from_json(baseline)
    reference_f1 = reference_f1 or {}
    split, domains = results.split, results.domains
    lines = [f"# Evaluation of the `{results.pack}` pack", "", f"Real {split} split of each domain; generated images: "
             f"{results.settings.get('per_class', '?')} per class, seeds fixed. Reproduce: `{command}`.", ""]  # fmt: skip
    if results.pack_settings:
        p = results.pack_settings
        lines += [
            f"Pack settings: {p['default_steps']} steps, guidance {p['default_guidance']} (unless a domain has its own, below).",
            "",
        ]
    degrade = {name: r.evaluator_degrade for name, r in domains.items() if r.evaluator_degrade is not None}
    if degrade:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in degrade.items())
        lines += [
            f"Evaluators (EfficientNet-Lite0, measurement only): share of training images slightly blurred or noised: {shares}.",
            "",
        ]
    panels = {name: len(r.evaluator_panel_seeds) for name, r in domains.items() if len(r.evaluator_panel_seeds) > 1}
    if panels:
        sizes = ", ".join(f"{name} {n}" for name, n in panels.items())
        lines += [f"Evaluator panel (the same recipe, other seeds): {sizes} evaluators. Generated-image F1 is their mean, "
                  "with the lowest and highest in brackets; the confusion matrices are the primary evaluator's.", ""]  # fmt: skip
    lines += [
        f"## Real {split} images",
        "",
        "| domain | classifier acc | bar | balanced acc | macro-F1 | CLIP zero-shot | evaluator acc |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in domains.items():
        c = r.classifier_real
        lines.append(
            f"| {name} | {c.accuracy:.3f} | {_accuracy_bar(r, c.accuracy)} | {_optional(c.balanced_accuracy, '.3f')} | {_optional(c.macro_f1, '.3f')} | {r.clip_zero_shot_accuracy:.3f} | {_optional(r.evaluator_real.accuracy, '.3f')} |"
        )
    for name, r in domains.items():
        if not r.classifier_by_source:
            continue
        lines += ["", f"Classifier accuracy on {name} by source and label (a source that comes with one label can stand in for it):", "",
                  "| source | label | images | accuracy |", "|---|---|---:|---:|"]  # fmt: skip
        lines += [f"| {g['source']} | {g['label']} | {g['n']} | {g['accuracy']:.2f} |" for g in r.classifier_by_source]
    lines += [
        "",
        "## Generated images",
        "",
        "| domain | mode | evaluator macro-F1 | Fréchet (EffNet-Lite0) | floor train↔test | KID | CLIP score | classifier agreement | NN cosine median / max | another domain's look |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in domains.items():
        for mode, label in MODES.items():
            m = r.mode(mode)
            if m is None:  # a run without the validation loop (evaluate-pack --modes base,lora)
                continue
            agreement = "–" if m.classifier_agreement is None else f"{m.classifier_agreement:.0%} of {m.generated}"
            lines.append(
                f"| {name} | {label} | {f1_text(m)} | {m.frechet_distance:.1f} | {r.frechet_floor:.1f} | {_optional(m.kid, '.4f')} | {_optional(m.clip_score, '.3f')} | {agreement} | {_optional(m.memorisation_median, '.3f')} / {_optional(m.memorisation_max, '.3f')} | {share_text(m.foreign_domain_share)} |"
            )
    ceilings = {name: r for name, r in domains.items() if r.autoencoder_ceiling}
    if ceilings:
        lines += ["", "## What the autoencoder lets through", "",
                  f"The real {split} images themselves, encoded and decoded: no generated image can carry more detail or class "
                  "evidence than this (the Fréchet distance compares each image with its own reconstruction, so it flatters).", "",
                  "| domain | evaluator macro-F1 real → reconstructed | Fréchet reconstructed ↔ real | base + LoRA, same evaluator |",
                  "|---|---|---:|---|"]  # fmt: skip
        for name, r in ceilings.items():
            ceiling, lora = r.autoencoder_ceiling, r.modes["lora"]
            lines.append(f"| {name} | {_optional(r.evaluator_real.macro_f1, '.3f')} → {ceiling['evaluator_macro_f1']:.3f} | {ceiling['frechet_distance']:.1f} | "
                         f"F1 {lora.evaluator_macro_f1:.3f}, Fréchet {lora.frechet_distance:.1f} |")  # fmt: skip
    lines += [
        "",
        "## Does the LoRA earn its place?",
        "",
        "| domain | guidance | LoRA guided against | Fréchet base → LoRA | evaluator F1 base → LoRA | evaluators preferring the LoRA | LoRA better on both | F1 against a published figure |",
        "|---|---:|---|---|---|---|---|---|",
    ]
    for name, r in domains.items():
        b, l = r.modes["base"], r.modes["lora"]
        both, preferring, n = lora_verdict(b, l)
        against = "bare base's unconditional" if r.base_unconditional else "its own unconditional"
        guidance = f"{r.guidance:g}" if r.guidance is not None else "–"  # not recorded before per-domain guidance
        lines.append(f"| {name} | {guidance} | {against} | {b.frechet_distance:.1f} → {l.frechet_distance:.1f} | {f1_text(b)} → {f1_text(l)} | "
                     f"{preferring} of {n} | {'✅' if both else '❌'} | {published_mark(l.panel_mean, reference_f1.get(name))} |")  # fmt: skip
    lines += per_class_section(results)
    lines += _validation_section(results)
    lines += _evaluator_set_section(results, share_bars or {})
    if baseline:
        lines += _baseline_section(results, baseline)
    lines += ["", "## Pictures", ""]
    for name, r in domains.items():
        lines += [f"### {name}", ""]
        left_out = []
        for caption, file in _pictures(name, "validated" in r.modes):
            if pictures is None or file in pictures:
                lines += [f"{caption}: ![{name}: {caption.lower()}]({file})", ""]
            else:
                left_out.append(caption.lower())
        if left_out:
            lines += [f"Left out of this folder: {'; '.join(left_out)}.", ""]
    return "\n".join(lines)


# a class is drawn when the evaluator finds it in generated images at least this share as often as in real ones,
# judged only where it finds it in real ones at least MIN_REAL_RECALL of the time (issue "every class drawn")
CLASS_RECALL_SHARE, MIN_REAL_RECALL = 0.7, 0.25


def classes_not_drawn(domain: DomainEvaluation, mode: str = "lora") -> list[str]:
    """The classes whose generated recall falls under CLASS_RECALL_SHARE of the same evaluator's real recall."""
    real = domain.evaluator_real.per_class_recall
    generated = domain.mode(mode).evaluator_per_class_recall if domain.mode(mode) else {}
    if not real or not generated:
        return []  # results from before real per-class recall was kept
    return [c for c, r in real.items() if r >= MIN_REAL_RECALL and generated.get(c, 0.0) < CLASS_RECALL_SHARE * r]


def per_class_section(results: PackEvaluation) -> list[str]:
    """Per class: the evaluator's recall on generated images beside its recall on real ones (a macro average hides
    the classes the generator cannot draw)."""
    domains = {n: r for n, r in results.domains.items() if r.evaluator_real.per_class_recall}
    if not domains:
        return []
    lines = ["", "## Per class: is every class drawn?", "",
             f"Recall of the primary evaluator on generated images of each class beside its recall on real {results.split} "
             f"images of it. ❌: under {CLASS_RECALL_SHARE:g}× the real recall (judged where the real recall is at least "
             f"{MIN_REAL_RECALL:g}; – below that, where the evaluator itself cannot tell the class).", "",
             "| domain | class | real | base | base + LoRA | validated | LoRA ÷ real | drawn |",
             "|---|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for name, r in domains.items():
        failing = classes_not_drawn(r)
        for code, real in r.evaluator_real.per_class_recall.items():
            shown = {m: g.evaluator_per_class_recall.get(code) for m, g in r.modes.items()}
            cells = [f"{shown[m]:.2f}" if shown.get(m) is not None else "–" for m in MODES]
            ratio = f"{shown['lora'] / real:.2f}" if real and shown.get("lora") is not None else "–"
            verdict = "–" if real < MIN_REAL_RECALL else "❌" if code in failing else "✅"
            lines.append(f"| {name} | {code} | {real:.2f} | {' | '.join(cells)} | {ratio} | {verdict} |")
    return lines


def _pictures(name: str, validated: bool) -> list[tuple[str, str]]:
    """(caption, file) of a domain's pictures, as evaluate-pack writes them."""
    confusions = [("Evaluator confusion, base + LoRA", f"{name}_confusion_lora.png")]
    if validated:
        confusions.append(
            ("Evaluator confusion, validation loop (row sums: the images it kept)", f"{name}_confusion_validated.png")
        )
    return [("Real (test) vs generated, per class", f"{name}_grid.jpg"), *confusions,
            ("Closest generated ↔ training pairs (memorisation check)", f"{name}_nearest_training.png")]  # fmt: skip


def _mean(values) -> float:
    return float(np.mean(values))


def _optional_mean(values) -> str:
    return "–" if values is None else f"{_mean(values):.3f}"


def _kept_text(kept: Mapping[str, int] | None, requested: int) -> str:
    """The classes the validation loop left short of what was asked, with what it kept."""
    if kept is None:
        return "not counted (results from before the counts were kept)"
    short = [f"{code} {n}" for code, n in kept.items() if n < requested]
    return ", ".join(short) or "none"


def _acceptance_text(threshold: str) -> str:
    """What the loop rejected, as the run's threshold option says it (0: each class's own bar)."""
    if float(threshold) == 0:
        return ("probability of the asked-for class below that class's median on real val images, one rule for every "
                "class, stored with the classifier")  # fmt: skip
    return f"confidence below {threshold}"


def _validation_section(results: PackEvaluation) -> list[str]:
    """What the validation loop keeps: only accepted images, so its F1 is measured on a different class mix."""
    domains = {name: r for name, r in results.domains.items() if "validated" in r.modes}
    if not domains or "per_class" not in results.settings:  # results without their settings: nothing to count against
        return []
    settings = results.settings
    requested = int(settings["per_class"])  # stored as the command line wrote it
    lines = ["", "## What the validation loop keeps", "",
             f"The loop asks for {requested} images per class, regenerates those the pack's classifier rejects "
             f"({_acceptance_text(settings.get('threshold', '0.5'))}, at most {settings.get('max_rounds', '3')} rounds) "
             "and keeps only accepted ones. Its F1 is therefore measured on the images the classifier already "
             "agrees with, with the classes it rarely accepts thin or missing: it says how recognisable the served "
             "images are, not how well every class can be drawn. Its Fréchet distance, from fewer images, is biased "
             "upward and does not compare with the other modes'.", "",
             "| domain | images kept of asked | generated | classifier agreement | classes left short (images kept) | evaluator F1 LoRA → validated |",
             "|---|---:|---:|---:|---|---|"]  # fmt: skip
    for name, r in domains.items():
        v = r.modes["validated"]
        asked = requested * len(r.classes)
        lines.append(f"| {name} | {v.n_images} of {asked} | {v.generated} | {_optional(v.classifier_agreement, '.0%')} | "
                     f"{_kept_text(v.images_per_class, requested)} | {f1_text(r.modes['lora'])} → {f1_text(v)} |")  # fmt: skip
    return lines


def _evaluator_set_section(results: PackEvaluation, share_bars: Mapping[str, float | None]) -> list[str]:
    """Generated-image F1 under each evaluator set, beside the same evaluators' F1 on real images."""
    domains = {name: r for name, r in results.domains.items() if r.evaluator_sets}
    if not domains:
        return []
    lines = ["", "## Generated images by evaluator set", "",
             "Each set's panel scores the real images and the generated ones; F1 is the panel's mean. A set trained on "
             "degraded images forgives blur, one trained on clean images does not. The bar: generated F1 (base + LoRA) "
             "at least the stated share of the same evaluators' F1 on real images.", "",
             "| domain | evaluator set | trained on degraded | real F1 | base | LoRA | validated | LoRA ÷ real | bar |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for name, r in domains.items():
        share = share_bars.get(name)
        for set_name, scores in r.evaluator_sets.items():
            real = _mean(scores.real_macro_f1)
            ratio = _mean(scores.by_mode["lora"]) / real if real else float("nan")
            verdict = f"{share:g} {'✅' if ratio >= share else '❌'}" if share else "–"
            lines.append(f"| {name} | {set_name} ({len(scores.seeds)}) | {scores.degrade:.0%} | {real:.3f} | "
                         f"{_mean(scores.by_mode['base']):.3f} | {_mean(scores.by_mode['lora']):.3f} | {_optional_mean(scores.by_mode.get('validated'))} | "
                         f"{ratio:.2f} | {verdict} |")  # fmt: skip
    return lines


def _baseline_section(results: PackEvaluation, baseline: PackEvaluation) -> list[str]:
    """The earlier pack against this one: Fréchet distance above the real floor, and generated F1 per evaluator set."""
    lines = ["", f"## Against the baseline (`{baseline.pack}`, measured the same way)", "",
             "Fréchet excess = distance to the real split minus the real train ↔ split floor; the bar asks for at most "
             "half the baseline's excess, and for the LoRA still to beat the bare base. Generated F1 compares only "
             "where the same evaluator weights scored both packs; a note marks pairs whose weights differ or were not "
             "recorded.", "",
             "| domain | Fréchet excess, LoRA: baseline → now | ≤ half | LoRA F1 by set: baseline → now |",
             "|---|---|---|---|"]  # fmt: skip
    for name, r in results.domains.items():
        old = baseline.domains.get(name)
        if not old:
            continue
        before = old.modes["lora"].frechet_distance - old.frechet_floor
        now = r.modes["lora"].frechet_distance - r.frechet_floor
        f1 = []
        for set_name, scores in r.evaluator_sets.items():
            earlier = old.evaluator_sets.get(set_name)
            if earlier:
                f1.append(f"{set_name} {_mean(earlier.by_mode['lora']):.3f} → {_mean(scores.by_mode['lora']):.3f}"
                          + _evaluator_weights_note(earlier.weights, scores.weights))  # fmt: skip
        lines.append(
            f"| {name} | {before:.1f} → {now:.1f} | {'✅' if now <= before / 2 else '❌'} | {'; '.join(f1) or '–'} |"
        )
    return lines


def _evaluator_weights_note(before, now) -> str:
    """Empty where the same evaluator weights scored both packs, else why the two F1 do not compare."""
    if not before or not now:
        return " (evaluator weights not recorded)"
    return "" if tuple(before) == tuple(now) else " (other evaluator weights: not comparable)"


def render_autoencoder_table(results: dict) -> str:
    """evaluate-autoencoder's table: F1, Fréchet distance and PSNR after the round trip, F1 after each perturbation."""
    checks = list(next(iter(results["domains"].values()))["evaluator_macro_f1_perturbed"]) if results["domains"] else []
    lines = [f"Real {results['split']} images through {results['vae']}:", "",
             "| domain | evaluator macro-F1 real → reconstructed | Fréchet reconstructed ↔ real | PSNR (dB) | "
             "sharpness real → reconstructed (share) | " + " | ".join(f"F1 after {c}" for c in checks) + " |",
             "|---|---|---:|---:|---|" + "---:|" * len(checks)]  # fmt: skip
    for name, r in results["domains"].items():
        perturbed = " | ".join(f"{r['evaluator_macro_f1_perturbed'][c]:.3f}" for c in checks)
        sharp = (
            f"{r['sharpness_real']:.1f} → {r['sharpness_reconstructed']:.1f} ({r['sharpness_reconstructed'] / max(r['sharpness_real'], 1e-9):.2f}×)"
            if "sharpness_real" in r else "not measured"
        )  # fmt: skip
        lines.append(
            f"| {name} | {r['evaluator_macro_f1_real']:.3f} → {r['evaluator_macro_f1']:.3f} | {r['frechet_distance']:.1f} | {r['psnr_db']:.1f} | {sharp} | {perturbed} |"
        )
    lines += ["", "Sharpness: median variance of the Laplacian of the greyscale image (0–255) at the autoencoder's size.",
              "", "The last columns: the real images slightly blurred or noised, no autoencoder involved. An evaluator "
              "whose F1 falls there judges image quality, not the finding (`train evaluator --degrade`)."]  # fmt: skip
    return "\n".join(lines)


def render_generated_report(results: dict) -> str:
    """`evaluate`'s REPORT.md for one folder of generated images."""
    fid = results["inception_fid"]
    lines = [
        f"# Evaluation of `{results['generated_dir']}` ({results['domain']})", "",
        f"{results['n_generated']} generated images against {results['n_real_test']} real test images.", "",
        "| measure | value |", "|---|---:|",
        f"| Fréchet distance (EfficientNet-Lite0 features) | {results['frechet_distance_effnet']:.2f} |",
        f"| KID (EfficientNet-Lite0 features) | {results['kid_effnet']:.4f} |",
        f"| Inception FID (torchmetrics) | {'not available offline' if fid is None else f'{fid:.2f}'} |",
        f"| evaluator macro-F1 | {results['evaluator_macro_f1']:.3f} |",
        f"| CLIP score | {results.get('clip_score', float('nan')):.3f} |",
        f"| nearest training image cosine, median / max | {results['memorisation_median']:.3f} / {results['memorisation_max']:.3f} |",
        "", "![confusion](confusion.png)", "", "Closest generated ↔ training pairs: ![nearest](nearest_training.png)", "",
    ]  # fmt: skip
    panel = results.get("evaluator_panel", [])
    if panel:
        lines += ["## Evaluator panel", "",
                  f"Each evaluator of the set (the same recipe, other seeds) on these images and on the real test images, at "
                  f"{results.get('resolution', '?')} px; the share is what an F1 bar is judged by.", "",
                  "| evaluator seed | generated macro-F1 | real test macro-F1 | share |", "|---:|---:|---:|---:|"]  # fmt: skip
        lines += [f"| {e['seed']} | {e['generated_macro_f1']:.3f} | {e['real_macro_f1']:.3f} | "
                  f"{e['generated_macro_f1'] / e['real_macro_f1'] if e['real_macro_f1'] else float('nan'):.2f} |" for e in panel]  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def _mean_sd(mean: float, sd: float, sign: str = "") -> str:
    return f"{mean:{sign}.3f}" + ("" if pd.isna(sd) else f" ± {sd:.3f}")


def _p(p: float) -> str:
    return "" if pd.isna(p) else f" (p={p:.2f})"


def _cell(summary_row: pd.Series, metric: str) -> str:
    return _mean_sd(summary_row[f"{metric}_mean"], summary_row[f"{metric}_std"])


def render_augment_report(
    setup: dict, summary: pd.DataFrame, differences: pd.DataFrame, minority: list[str], conditions: Mapping[str, str], metrics: list[str], command: str,
) -> str:  # fmt: skip
    """augment-experiment's REPORT.md: counts, results per condition, differences to oversampling, pictures."""
    classes = setup["classes"]
    counts = "\n".join(
        f"| {c}{' (minority)' if c in minority else ''} | {setup['real_train_counts'][i]} | "
        f"{setup['synthetic_counts']['unvalidated'][i]} | {setup['synthetic_counts']['validated'][i]} |"
        for i, c in enumerate(classes)
    )
    header = (
        "| condition | seeds | train images | balanced acc | macro-F1 | "
        + " | ".join(f"recall {c}" for c in minority)
        + " | mean rare recall |"
    )
    rule = "|" + "---|" * (6 + len(minority))
    rows = [
        f"| {conditions[r['condition']]} | {r['seeds']} | {r['n_train']} | "
        + " | ".join(_cell(r, m) for m in metrics)
        + " |"
        for _, r in summary.iterrows()
    ]
    diff_rows = [
        f"| {conditions[r['condition']]} | {r['pairs']} | "
        + " | ".join(
            _mean_sd(r[f"{m}_diff_mean"], r[f"{m}_diff_sd"], "+") + _p(r[f"{m}_p"])
            for m in ("macro_f1", "balanced_accuracy", "rare_recall")
        )
        + " |"
        for _, r in differences.iterrows()
    ]
    config = setup["config"]
    return f"""# Augmentation experiment: {setup["domain"]}

Does adding synthetic images of the minority classes ({", ".join(minority)}) help a classifier more
than plain oversampling? Same classifier (ResNet-18 family from scratch, base width {config["base_width"]},
{config["image_size"]} px), same {setup["steps_per_run"]} optimisation steps, augmentation and model
selection on the real val split in every run; only the training set (or loss weights) changes.
Measured on the real test split ({setup["n_test"]} images). Hardware: {setup["hardware"]}.
Reproduce: `{command}`.

## Training images per class

| class | real train | synthetic unvalidated | synthetic validated (accepted) |
|---|---|---|---|
{counts}

Oversampling adds as many random duplicates of each minority class as the unvalidated synthetic set
adds images; the class-balanced loss weights classes ∝ 1 / count; synthetic-only trains on the
validated synthetic images of every class.

## Results (mean ± sd over seeds)

{header}
{rule}
{chr(10).join(rows)}

![conditions](conditions.png)

## Difference to random oversampling (paired by seed, mean ± sd, paired t-test p)

With a handful of seeds only large, consistent differences reach p < 0.05; read the p-values as a
guide, not a verdict (several comparisons, no multiplicity correction).

| condition | pairs | macro-F1 | balanced acc | mean rare recall |
|---|---|---|---|---|
{chr(10).join(diff_rows)}

## Synthetic minority images (real, unvalidated, validated)

![synthetic minority](synthetic_minority.png)

Per-run records: `runs.jsonl`; summary: `summary.csv`; setup: `setup.json`.
"""
