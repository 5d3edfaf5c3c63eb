"""The options of the research commands (evaluate-pack, evaluate-autoencoder, augment-experiment), torch-free
so that the CLI's parser builds without loading models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medsynth.configs import option
from medsynth.paths import EMBEDDED_PACK, REPORTS_DIR, pack_dir

CONDITIONS = {
    "real": "real only",
    "oversample": "real + random oversampling of minority classes",
    "balanced_loss": "real + class-balanced loss",
    "synthetic": "real + synthetic minority (unvalidated)",
    "synthetic_validated": "real + synthetic minority (validated)",
    "synthetic_only": "synthetic only (validated)",
}


@dataclass
class PackEvaluationConfig:
    """Evaluate a pack on a real split (needs the evaluators: `medsynth train evaluator`)."""

    pack: str = option("", help="model pack (default: $MEDSYNTH_PACK or mini)")
    domains: tuple[str, ...] = option((), help="domains to evaluate (default: every available domain)")
    per_class: int = option(50, help="generated images per class and mode")
    modes: tuple[str, ...] = option(
        ("base", "lora", "validated"), help="generators measured: base (bare shared base) and lora always, validated "
        "(base + LoRA + validation loop) where named; each mode's numbers do not depend on the others",
    )  # fmt: skip
    steps: int = option(0, help="denoising steps (0: the pack's default)")
    guidance: float = option(0.0, help="guidance scale (0: each domain's default in the pack)")
    threshold: float = option(
        0.0, help="classifier confidence the validation loop asks for (0: each class's median probability on real val "
        "images, the app's rule)",
    )  # fmt: skip
    max_rounds: int = option(3, help="validation rounds at most")
    seed: int = option(1000, help="first generation seed (class k starts at seed + 10000 k)")
    split: str = option("test", help="real split to compare with: val to make choices, test once for the report")
    out: Path = option(help="report folder (results.json, REPORT.md, pictures)", factory=lambda: REPORTS_DIR / "mini")
    evaluators: tuple[Path, ...] = option(
        (), help="evaluator sets (folders of evaluators per domain) that score generated images, the first the primary "
        "one (its confusion matrices and autoencoder ceiling are shown); default: runs/evaluators",
    )  # fmt: skip
    reference_resolution: int = option(
        0, help="px the real images are read at (0: the generator's); two packs of different resolutions compare at one size",
    )  # fmt: skip
    baseline: Path | None = option(
        None, help="results.json of an earlier pack measured the same way: its numbers join the report"
    )
    probes: Path | None = option(
        None, help="the ImageNet probe set (`train evaluator --class-power 0 --select accuracy --root DIR`) whose real "
        "accuracy, times the registry's probe_accuracy_share, is each pack classifier's bar (default: no bar)",
    )  # fmt: skip


@dataclass
class AutoencoderEvaluationConfig:
    """Real images of each domain through an autoencoder: evaluator macro-F1, Fréchet distance, PSNR."""

    vae: Path = option(help="an AutoencoderKL folder", factory=lambda: pack_dir(EMBEDDED_PACK) / "base" / "vae")
    domains: tuple[str, ...] = option((), help="domains to measure (default: the registry's trains of the mini pack)")
    split: str = option("val", help="val to choose autoencoders; the test split is for the pack's report")
    evaluators: Path | None = option(
        None, help="the evaluator set that scores the reconstructions (default: runs/evaluators)"
    )
    out: Path | None = option(
        None,
        help="results JSON (default: runs/autoencoder_ceilings/<vae's parent folder>_<split>.json, never inside a pack)",
    )


@dataclass
class AugmentExperimentConfig:
    """Train one classifier per condition and seed; report test balanced accuracy, macro-F1, rare-class recall."""

    domain: str = option(help="domain of the experiment (see `medsynth domains`)")
    synthetic: Path | None = option(
        None, help="folder with unvalidated/ and validated/ exports (default: runs/synthetic/<domain>)"
    )
    per_class: int = option(150, help="synthetic images per class, when they have to be exported first")
    minority: tuple[str, ...] = option(
        (), help="minority class codes (default: the registry's rare classes, else the smallest class)"
    )
    conditions: tuple[str, ...] = option((), help=f"conditions to run (default: all six: {', '.join(CONDITIONS)})")
    seeds: tuple[int, ...] = option((0, 1, 2), help="seeds per condition")
    epochs: int = option(10, help="training length in real-train passes: every condition gets the same number of steps")
    base_width: int = option(16, help="channels of the classifier's first stage")
    image_size: int = option(64, help="classifier input size in px")
    batch_size: int = option(64, help="images per step")
    pack: str = option("", help="pack that generates missing synthetic sets (default: $MEDSYNTH_PACK or mini)")
    out: Path | None = option(None, help="report folder (default: reports/augment/<domain>)")


@dataclass
class SamplingSweepConfig:
    """Generation settings chosen on val: evaluator macro-F1 and Fréchet distance per (mode, guidance, steps)."""

    domain: str = option(help="domain to sweep (see `medsynth domains`)")
    guidance: tuple[float, ...] = option((2.0, 3.0, 4.0), help="guidance scales to try")
    steps: tuple[int, ...] = option((20,), help="denoising step counts to try")
    modes: tuple[str, ...] = option(("base", "lora"), help="generators to try: base (bare shared base), lora")
    per_class: int = option(50, help="generated images per class and setting")
    seed: int = option(
        1000, help="first generation seed (class k starts at seed + 10000 k), the same for every setting"
    )
    pack: str = option("", help="model pack (default: $MEDSYNTH_PACK or mini)")
    evaluators: Path | None = option(
        None, help="the evaluator set that scores generated images (default: runs/evaluators)"
    )
    reference_resolution: int = option(0, help="px the real val images are read at (0: the generator's)")
    out: Path | None = option(None, help="results folder (default: runs/sampling/<pack>_<domain>)")


@dataclass
class CounterfactualEvaluationConfig:
    """Counterfactual pairs measured on real images of each domain's normal or benign class: how often the evaluator
    reads the result as the target class, and how much of the source's structure it keeps."""

    targets: tuple[str, ...] = option(
        (), help="domain/class pairs to redraw into, e.g. a domain's disease (default: every available domain, to its "
        "first class after the registry's baseline_class)",
    )  # fmt: skip
    per_domain: int = option(24, help="real images of the baseline class redrawn per domain")
    strength: float = option(0.0, help="how far each source is noised (0: the app's default)")
    split: str = option("test", help="the real split the sources come from: val to choose, test to report")
    seed: int = option(0, help="first seed (image i uses seed + i) and the seed of the draw of sources")
    pack: str = option("", help="model pack (default: $MEDSYNTH_PACK or mini)")
    evaluators: Path | None = option(None, help="the evaluator set that reads the results (default: runs/evaluators)")
    out: Path = option(help="report folder", factory=lambda: REPORTS_DIR / "counterfactuals")
