"""Shared fixtures: tiny random model packs built in the real formats, and the real data folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# the suite sees the shipped registry alone: a developer's own domains (runs/registry.toml) stay out of it
_scratch = tempfile.mkdtemp(prefix="medsynth-tests-")
os.environ["MEDSYNTH_USER_REGISTRY"] = os.path.join(_scratch, "registry.toml")
os.environ.setdefault("MEDSYNTH_PRECISION_CACHE", os.path.join(_scratch, "precision_probe.json"))  # not the home

from medsynth.paths import data_root  # noqa: E402
from tests.support.tiny_pack import TinyPack, build_tiny_pack  # noqa: E402


@pytest.fixture(scope="session")
def tiny_pack(tmp_path_factory) -> TinyPack:
    """Pipeline with a BERT text encoder (like the embedded pack), two LoRA domains, one broken."""
    return build_tiny_pack(tmp_path_factory.mktemp("tiny_pack"), text="bert")


@pytest.fixture(scope="session")
def tiny_registry(tiny_pack):
    from medsynth.registry import load_registry

    return load_registry(tiny_pack.registry_path)


@pytest.fixture(scope="session")
def engine(tiny_registry, tiny_pack):
    from medsynth.generation.engine import MedSynth

    return MedSynth(tiny_registry, tiny_pack.pack)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real data folder; tests that need it skip on a clone without ../shared/data."""
    root = data_root()
    if not (root / "README.md").exists():
        pytest.skip(f"real data not found at {root} (set MEDSYNTH_DATA); CI has it")
    return root
