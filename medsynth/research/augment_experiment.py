"""`python -m medsynth augment-experiment --domain D`: do synthetic rare-class images beat oversampling?

The same classifier (the pack's ResNet-18 family, smaller width) is trained under six conditions,
with several seeds each, and measured on the real test split:

    real                 real train split, plain cross-entropy
    oversample           real, minority classes randomly duplicated (as many extra images as (d) adds)
    balanced_loss        real, loss weights ∝ 1 / class count
    synthetic            real + synthetic minority images, unvalidated
    synthetic_validated  real + synthetic minority images the pack's classifier accepted
    synthetic_only       synthetic images of every class (validated), no real image

Every run gets the same number of optimisation steps (one real-train epoch is the unit), the same
augmentation and model selection on the real val split, so the training *set* is the only thing
that changes. Synthetic sets come from `export` (generated here when missing). Runs are appended
to runs.jsonl as they finish: an interrupted experiment resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from medsynth.configs import changed_options, command_line, defaults_of
from medsynth.data.cache import labelled_splits
from medsynth.data.folders import load_rgb
from medsynth.imaging import to_pil_images
from medsynth.models.fitting import FitSettings, balanced_class_weights, fit_classifier, predict_logits
from medsynth.models.metrics import classification_metrics, per_class_recall
from medsynth.paths import REPORTS_DIR, runs_dir
from medsynth.precision import hardware, training_device
from medsynth.registry import Registry, selected_pack_name
from medsynth.research.config import CONDITIONS, AugmentExperimentConfig
from medsynth.research.reports import render_augment_report

logger = logging.getLogger(__name__)

SYNTHETIC_SETS = ("unvalidated", "validated")


@dataclass
class LabelledImages:
    images: np.ndarray  # (N, S, S, 3) uint8
    labels: np.ndarray  # (N,) class indices

    def of(self, classes: list[int]) -> "LabelledImages":
        mask = np.isin(self.labels, classes)
        return LabelledImages(self.images[mask], self.labels[mask])

    def __add__(self, other: "LabelledImages") -> "LabelledImages":
        return LabelledImages(np.concatenate([self.images, other.images]), np.concatenate([self.labels, other.labels]))

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self, n_classes: int) -> list[int]:
        return np.bincount(self.labels, minlength=n_classes).tolist()


# options that only say where files go: a re-run may put them elsewhere
WHERE_OPTIONS = ("synthetic", "out")


def reproduce_command(config: dict) -> str:
    """The command line that repeats a run: the domain, then every option that differs from its default."""
    keys = [k for k in config if k not in (*WHERE_OPTIONS, "domain")]
    changed = changed_options(config, defaults_of(AugmentExperimentConfig), keys)
    return command_line("python -m medsynth augment-experiment", {"domain": config["domain"], **changed})


def load_synthetic(folder: Path, classes: list[str], size: int, accepted_only: bool) -> LabelledImages:
    """An `export` folder as arrays; `accepted_only` keeps the images that passed validation."""
    frame = pd.read_csv(folder / "metadata.csv", dtype=str, keep_default_na=False)
    if accepted_only:
        frame = frame[frame["accepted"].str.lower() == "true"]
    frame = frame[frame["label"].isin(classes)]
    images = [np.asarray(load_rgb(folder / f, size)) for f in frame["file"]]
    empty = np.zeros((0, size, size, 3), np.uint8)
    return LabelledImages(
        np.stack(images) if images else empty, np.array([classes.index(c) for c in frame["label"]], dtype=np.int64)
    )


def oversampled(real: LabelledImages, extra: list[int], generator: np.random.Generator) -> LabelledImages:
    """Real images plus `extra[c]` random duplicates (with replacement) of each class c."""
    picks = [generator.choice(np.flatnonzero(real.labels == c), size=n, replace=True) for c, n in enumerate(extra) if n]
    index = np.concatenate([np.arange(len(real)), *picks])
    return LabelledImages(real.images[index], real.labels[index])


def training_set(
    condition: str,
    real: LabelledImages,
    synthetic: dict[str, LabelledImages],
    minority: list[int],
    seed: int,
    n_classes: int,
):
    """(images, class weights or None) for one condition."""
    if condition == "real":
        return real, None
    if condition == "oversample":
        extra = synthetic["unvalidated"].of(minority).counts(n_classes)
        return oversampled(real, extra, np.random.default_rng(seed)), None
    if condition == "balanced_loss":
        return real, balanced_class_weights(torch.from_numpy(real.labels), n_classes, power=1.0)
    if condition == "synthetic":
        return real + synthetic["unvalidated"].of(minority), None
    if condition == "synthetic_validated":
        return real + synthetic["validated"].of(minority), None
    if condition == "synthetic_only":
        return synthetic["validated"], None
    raise ValueError(f"unknown condition {condition!r}; choose from {', '.join(CONDITIONS)}")


def incomplete_sets(folder: Path, classes: list[str], per_class: int) -> list[str]:
    """The synthetic sets with fewer than `per_class` images of some class (an interrupted export included)."""
    missing = []
    for name in SYNTHETIC_SETS:
        path = folder / name / "metadata.csv"
        labels = pd.read_csv(path, dtype=str)["label"].value_counts() if path.is_file() else pd.Series(dtype=int)
        if any(labels.get(c, 0) < per_class for c in classes):
            missing.append(name)
    return missing


def ensure_synthetic(config: AugmentExperimentConfig, registry: Registry, folder: Path, classes: list[str]) -> None:
    """Export (or finish exporting) the unvalidated and validated synthetic sets; exports resume."""
    missing = incomplete_sets(folder, classes, config.per_class)
    if not missing:
        return
    from medsynth.generation.engine import MedSynth
    from medsynth.research.synthetic_dataset import ExportPlan, export_dataset

    engine = MedSynth(registry, config.pack or selected_pack_name())
    for name in missing:
        export_dataset(engine, ExportPlan(config.domain, config.per_class, validate=name == "validated"), folder / name)


def run_condition(
    condition: str, seed: int, config: AugmentExperimentConfig, classes: list[str], real: LabelledImages,
    synthetic: dict[str, LabelledImages], minority: list[int], val, y_val: torch.Tensor, test: LabelledImages, mirror: bool,
) -> dict:  # fmt: skip
    started = time.perf_counter()
    train, weights = training_set(condition, real, synthetic, minority, seed, len(classes))
    if not len(train):
        raise ValueError(f"{condition}: empty training set (no synthetic images?)")
    train_config = FitSettings(
        image_size=config.image_size, base_width=config.base_width, epochs=config.epochs, batch_size=config.batch_size,
        mirror=mirror, seed=seed, name=f"{condition} seed {seed}",
    )  # fmt: skip
    steps = max(1, len(real) // config.batch_size)
    fitted = fit_classifier(
        train_config, classes, train.images, torch.from_numpy(train.labels), val.images, y_val, weights, steps
    )
    predicted = predict_logits(fitted.model, test.images, training_device()).argmax(1).numpy()
    return {
        "condition": condition, "seed": seed, "n_train": len(train), "train_counts": train.counts(len(classes)),
        **classification_metrics(test.labels, predicted, len(classes)),
        "recall": dict(zip(classes, per_class_recall(test.labels, predicted, len(classes)))),
        "chosen_epoch": fitted.chosen["epoch"], "wall_time_s": round(time.perf_counter() - started, 1),
    }  # fmt: skip


def _done_runs(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_experiment(config: AugmentExperimentConfig, registry: Registry) -> Path:
    domain = registry.get_domain(config.domain)
    conditions = list(config.conditions or CONDITIONS)
    for condition in conditions:
        if condition not in CONDITIONS:
            raise ValueError(f"unknown condition {condition!r}; choose from {', '.join(CONDITIONS)}")
    out = Path(config.out or REPORTS_DIR / "augment" / config.domain)
    out.mkdir(parents=True, exist_ok=True)
    classes, (train, val, test_split), (y_train, y_val, y_test) = labelled_splits(
        domain, config.image_size, ("train", "val", "test")
    )
    folder = Path(config.synthetic or runs_dir() / "synthetic" / config.domain)
    ensure_synthetic(config, registry, folder, classes)
    test = LabelledImages(test_split.images, y_test.numpy())
    real = LabelledImages(train.images, y_train.numpy())
    counts = real.counts(len(classes))
    minority_codes = list(config.minority or domain.rare_classes or [classes[int(np.argmin(counts))]])
    unknown = [c for c in minority_codes if c not in classes]
    if unknown:
        raise ValueError(
            f"unknown minority class(es) {', '.join(unknown)} for {config.domain}; classes: {', '.join(classes)}"
        )
    minority = [classes.index(c) for c in minority_codes]
    synthetic = {
        name: load_synthetic(folder / name, classes, config.image_size, accepted_only=name == "validated")
        for name in SYNTHETIC_SETS
    }

    runs_path = out / "runs.jsonl"
    done = {(r["condition"], r["seed"]) for r in _done_runs(runs_path)}
    todo = [(c, s) for c in conditions for s in config.seeds if (c, s) not in done]
    for condition, seed in tqdm(todo, desc=f"augment-experiment {config.domain}", unit="run"):
        record = run_condition(
            condition, seed, config, classes, real, synthetic, minority, val, y_val, test, domain.mirror
        )
        with runs_path.open("a") as handle:  # one line per finished run: the unit of resumption
            handle.write(json.dumps(record) + "\n")

    setup = {
        "domain": config.domain, "classes": classes, "minority": minority_codes, "real_train_counts": counts,
        "synthetic_counts": {name: synthetic[name].counts(len(classes)) for name in SYNTHETIC_SETS},
        "n_test": len(test), "steps_per_run": config.epochs * max(1, len(real) // config.batch_size),
        "hardware": hardware(), "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
    }  # fmt: skip
    runs = [r for r in _done_runs(runs_path) if r["condition"] in conditions and r["seed"] in config.seeds]
    summary = summarise(runs, minority_codes)
    summary.to_csv(out / "summary.csv", index=False)
    plot_conditions(runs, minority_codes, config.domain, out / "conditions.png")
    sample_picture(synthetic, real, minority, classes).save(out / "synthetic_minority.png")
    (out / "setup.json").write_text(json.dumps(setup, indent=2))
    differences = paired_differences(runs, minority_codes)
    report = render_augment_report(
        setup, summary, differences, minority_codes, CONDITIONS, metric_columns(minority_codes), reproduce_command(setup["config"]),
    )  # fmt: skip
    (out / "REPORT.md").write_text(report)
    return out / "REPORT.md"


def _metrics_frame(runs: list[dict], minority: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [{"condition": r["condition"], "seed": r["seed"], "n_train": r["n_train"], "balanced_accuracy": r["balanced_accuracy"],
          "macro_f1": r["macro_f1"], **{f"recall_{c}": r["recall"][c] for c in minority},
          "rare_recall": float(np.mean([r["recall"][c] for c in minority]))} for r in runs]
    )  # fmt: skip
    order = [c for c in CONDITIONS if c in set(frame["condition"])]
    frame["condition"] = pd.Categorical(frame["condition"], order, ordered=True)
    return frame.sort_values(["condition", "seed"])


def metric_columns(minority: list[str]) -> list[str]:
    return ["balanced_accuracy", "macro_f1", *[f"recall_{c}" for c in minority], "rare_recall"]


def summarise(runs: list[dict], minority: list[str]) -> pd.DataFrame:
    """Mean and sample sd over seeds of every metric, one row per condition."""
    frame = _metrics_frame(runs, minority)
    grouped = frame.groupby("condition", observed=True)
    summary = grouped[metric_columns(minority)].agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    summary.insert(0, "seeds", grouped.size())
    summary.insert(1, "n_train", grouped["n_train"].first())
    return summary.reset_index()


def paired_differences(runs: list[dict], minority: list[str], reference: str = "oversample") -> pd.DataFrame:
    """Each condition minus the reference, paired by seed: mean ± sd of the differences."""
    frame = _metrics_frame(runs, minority).set_index(["condition", "seed"])
    if reference not in frame.index.get_level_values(0):
        return pd.DataFrame()
    rows = []
    for condition in frame.index.get_level_values(0).unique():
        if condition == reference:
            continue
        diff = (
            frame.loc[condition][["macro_f1", "balanced_accuracy", "rare_recall"]]
            - frame.loc[reference][["macro_f1", "balanced_accuracy", "rare_recall"]]
        ).dropna()
        if diff.empty:
            continue
        rows.append({
            "condition": condition, "pairs": len(diff),
            **{f"{k}_diff_mean": diff[k].mean() for k in diff}, **{f"{k}_diff_sd": diff[k].std() for k in diff},
            **{f"{k}_p": _paired_p(diff[k].to_numpy()) for k in diff},
        })  # fmt: skip
    return pd.DataFrame(rows)


def _paired_p(differences: np.ndarray) -> float:
    """Two-sided paired t-test p-value (scipy); nan with fewer than two pairs or no spread."""
    from scipy.stats import ttest_1samp

    if len(differences) < 2 or np.allclose(differences, differences[0]):
        return float("nan")
    return float(ttest_1samp(differences, 0.0).pvalue)


def plot_conditions(runs: list[dict], minority: list[str], domain: str, path: Path) -> None:
    """Bars (mean ± sd over seeds) with every seed as a dot, one panel per metric."""
    from matplotlib.figure import Figure

    frame = _metrics_frame(runs, minority)
    metrics = ["balanced_accuracy", "macro_f1", "rare_recall"]
    titles = ["balanced accuracy", "macro-F1", f"mean recall of {', '.join(minority)}"]
    conditions = list(frame["condition"].cat.categories)
    figure = Figure(figsize=(4.2 * len(metrics), 4.2))
    for k, (metric, title) in enumerate(zip(metrics, titles)):
        ax = figure.add_subplot(1, len(metrics), k + 1)
        for i, condition in enumerate(conditions):
            values = frame.loc[frame["condition"] == condition, metric].to_numpy()
            ax.bar(
                i, values.mean(), yerr=values.std(ddof=1) if len(values) > 1 else 0, color=f"C{i}", alpha=0.6, capsize=4
            )
            ax.scatter(
                np.full(len(values), i) + np.linspace(-0.15, 0.15, len(values)), values, color="black", s=10, zorder=3
            )
        ax.set_xticks(range(len(conditions)), conditions, rotation=35, ha="right", fontsize=8)
        values = frame[metric].to_numpy()
        ax.set_ylim(max(0.0, values.min() - 0.1), min(1.0, values.max() + 0.05))  # zoomed: differences are small
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    figure.suptitle(f"{domain}: real test split, mean ± sd over seeds (dots: seeds; y axes zoomed)", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def sample_picture(
    synthetic: dict[str, LabelledImages],
    real: LabelledImages,
    minority: list[int],
    classes: list[str],
    per_row: int = 8,
):
    """Per minority class: real, unvalidated synthetic and validated synthetic images side by side."""

    from medsynth.research.pictures import image_grid

    rows, labels = [], []
    for c in minority:
        for name, source in (("real", real), *synthetic.items()):
            images = source.of([c]).images[:per_row]
            rows.append(to_pil_images(images))
            labels.append(f"{classes[c]} {name}")
    return image_grid(rows, labels, label_width=150)
