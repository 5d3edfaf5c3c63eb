"""The options of `train pack` and `train model-card`, torch-free so that the CLI's parser builds fast."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medsynth.configs import option
from medsynth.paths import EMBEDDED_PACK, REPORTS_DIR, pack_dir, runs_dir


@dataclass
class PackAssembleConfig:
    """Copy the base pipeline and LoRA adapters from runs/ into assets/models/mini."""

    runs: Path = option(help="the runs folder the components were trained into", factory=runs_dir)
    out: Path = option(help="the pack folder to fill", factory=lambda: pack_dir(EMBEDDED_PACK))
    domains: tuple[str, ...] = option(
        (), help="domains whose adapters are copied (default: the registry's trains of the mini pack)"
    )
    base_run: str = option("base", help="run folder under --runs holding the base's pipeline/")
    lora_run: str = option("lora", help="run folder under --runs holding lora/<domain>")
    vae_run: str = option("", help="a `train autoencoder --decoder-only` run whose vae replaces the base pipeline's")
    autoencoder_run: str = option(
        "autoencoder", help="run folder under --runs of the autoencoder the base was trained on (its record is kept)"
    )
    classifier_run: str = option(
        "", help="run folder under --runs holding <domain>/ classifiers (`train classifier --out`); empty: the pack's"
    )
    clip_run: str = option("", help="a `train clip --out` run folder under --runs; empty: the pack's CLIP stays")


@dataclass
class ModelCardConfig:
    """Write the pack's MODEL_CARD.md from its template, training records and reports/mini/results.json."""

    pack_dir: Path = option(
        help="the pack folder (its MODEL_CARD.md is rewritten)", factory=lambda: pack_dir(EMBEDDED_PACK)
    )
    results: Path = option(
        help="evaluate-pack results on the test split", factory=lambda: REPORTS_DIR / "mini" / "results.json"
    )
    template: Path = option(
        help="the card's prose with its slots", factory=lambda: pack_dir(EMBEDDED_PACK) / "card" / "template.md"
    )
    pack: str = option(EMBEDDED_PACK, help="registry name of the pack (its domains, size budget and sources)")
