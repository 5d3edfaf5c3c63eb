"""Assemble the embedded pack from finished runs: the layout assets/registry.toml expects."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .common import MINI_PACK_DIR, PACK_DOMAINS, runs_dir


@dataclass
class PackAssembleConfig:
    """Copy the base pipeline and LoRA adapters from runs/ into assets/models/mini."""

    runs: Path = field(default_factory=runs_dir)
    out: Path = MINI_PACK_DIR
    domains: tuple[str, ...] = PACK_DOMAINS


def _replace(source: Path, target: Path) -> None:
    if not source.exists():
        raise FileNotFoundError(f"{source} is missing: run its training command first")
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)


def assemble_pack(config: PackAssembleConfig) -> Path:
    _replace(config.runs / "base" / "pipeline", config.out / "base")
    shutil.copy2(config.runs / "base" / "training_base.json", config.out / "base" / "training_base.json")
    shutil.copy2(config.runs / "autoencoder" / "training_autoencoder.json", config.out / "base" / "training_autoencoder.json")
    for domain in config.domains:
        _replace(config.runs / "lora" / domain / "adapter", config.out / "lora" / domain)
        record = config.runs / "lora" / domain / f"training_lora_{domain}.json"
        shutil.copy2(record, config.out / "lora" / domain / record.name)
    return config.out
