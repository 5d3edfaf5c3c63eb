"""Independent evaluators: where they live (training: `medsynth.training.evaluator`; loading as scorers:
`medsynth.research.evaluators`).

EfficientNet-Lite0 from ImageNet weights, fine-tuned per domain, used only to measure generated
images (never by the validation loop), so a generator cannot "pass" by fooling the very classifier
it was filtered with. Stored in the classifier folder format under runs/evaluators, outside the pack.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from medsynth.paths import runs_dir

EVAL_SIZE = 128  # 64 px images are upsampled: EfficientNet's 32x reduction needs room
DEFAULT_SEED = 1


def evaluators_dir() -> Path:
    """The default evaluator set: runs/evaluators (a set is a folder of evaluators, one or more per domain)."""
    return runs_dir() / "evaluators"


def evaluator_folder(domain: str, seed: int = DEFAULT_SEED, root: Path | None = None) -> Path:
    """<set>/<domain> holds the primary evaluator; evaluators trained with other seeds sit beside it as
    <domain>-seed<S> and form the panel that shows how much a verdict owes to one evaluator."""
    return Path(root or evaluators_dir()) / (domain if seed == DEFAULT_SEED else f"{domain}-seed{seed}")


def panel_folders(domain: str, root: Path | None = None) -> dict[int, Path]:
    """Every finished evaluator folder of the domain in a set, by seed, the primary first (`train evaluator --seed S`
    adds one)."""
    root = Path(root or evaluators_dir())
    primary = evaluator_folder(domain, root=root)
    if not primary.exists():
        raise FileNotFoundError(
            f"evaluator {primary} not found: run `python -m medsynth train evaluator --domain {domain}`"
        )
    folders = {DEFAULT_SEED: primary}
    for folder in root.glob(f"{domain}-seed*"):
        seed = folder.name.removeprefix(f"{domain}-seed")
        if seed.isdigit() and (folder / "config.json").is_file():
            folders[int(seed)] = folder
    return dict(sorted(folders.items(), key=lambda item: (item[0] != DEFAULT_SEED, item[0])))


def evaluator_degrade(domain: str, root: Path | None = None) -> float:
    """The --degrade share the domain's evaluator was trained with (0 for evaluators from before the option)."""
    record = evaluator_folder(domain, root=root) / "training_evaluator.json"
    return float(json.loads(record.read_text())["config"].get("degrade", 0.0)) if record.is_file() else 0.0


def weights_fingerprint(folder: Path) -> str:
    """The first 12 hex digits of the SHA-256 of an evaluator's weights: two reports' F1 compare only where the
    same weights scored both (a retrained evaluator, even with the same recipe and seed, is another judge)."""
    with open(Path(folder) / "model.safetensors", "rb") as weights:
        return hashlib.file_digest(weights, "sha256").hexdigest()[:12]
