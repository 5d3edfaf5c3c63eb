"""Where things live: the project, its assets, runs/ and the real data. Every environment setting for a
location is read here and nowhere else."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = PROJECT_ROOT / "assets"
REPORTS_DIR = PROJECT_ROOT / "reports"
DEFAULT_REGISTRY = ASSETS_DIR / "registry.toml"

RUNS_ENV = "MEDSYNTH_RUNS"
DATA_ENV = "MEDSYNTH_DATA"
REFERENCE_ENV = "MEDSYNTH_REFERENCE"
REGISTRY_ENV = "MEDSYNTH_REGISTRY"
USER_REGISTRY_ENV = "MEDSYNTH_USER_REGISTRY"
PACK_ENV = "MEDSYNTH_PACK"
EMBEDDED_PACK = "mini"  # the pack this project trains and ships in assets/


def registry_path() -> Path:
    """The registry file: $MEDSYNTH_REGISTRY or assets/registry.toml."""
    return Path(os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY)


def user_registry_path() -> Path:
    """The user layer over the registry (domains a user added): $MEDSYNTH_USER_REGISTRY or runs/registry.toml."""
    return Path(os.environ.get(USER_REGISTRY_ENV) or runs_dir() / "registry.toml")


def runs_dir() -> Path:
    """Where checkpoints and caches go: $MEDSYNTH_RUNS or ./runs (git-ignored, never committed)."""
    return Path(os.environ.get(RUNS_ENV) or PROJECT_ROOT / "runs")


def data_root() -> Path:
    """The real-data folder: $MEDSYNTH_DATA, defaulting to ../shared/data beside the project."""
    return Path(os.environ.get(DATA_ENV) or PROJECT_ROOT.parent / "shared" / "data")


def domain_folder(domain: str, root: str | Path | None = None) -> Path:
    """One domain's folder (images/ and metadata.csv) under `root` or the data root."""
    return Path(root or data_root()) / domain


def reference_root() -> Path | None:
    """Real images shown beside generated ones (Compare tab): $MEDSYNTH_REFERENCE, else the data root if present."""
    configured = os.environ.get(REFERENCE_ENV)
    if configured:
        return Path(configured)
    return data_root() if data_root().exists() else None


def pack_dir(pack: str) -> Path:
    """A pack trained by this project, inside the package's assets (the embedded `mini`)."""
    return ASSETS_DIR / "models" / pack
