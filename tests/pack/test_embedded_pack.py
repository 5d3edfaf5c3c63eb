"""The embedded pack as committed: within its budget, safetensors only, generator and classifiers at 128 px."""

import json
from pathlib import Path

import pytest

from medsynth.registry import load_registry

REGISTRY = load_registry()
PACK = REGISTRY.get_pack("mini")
FOLDER = Path(PACK.base.location).parent

pytestmark = pytest.mark.skipif(not (FOLDER / "base").is_dir(), reason="the embedded pack is not in this checkout")

# what a weights file may be called in the pack: anything else (pickles, checkpoints) must not be committed
PICKLED = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def test_the_pack_fits_its_budget_in_safetensors_alone():
    files = [path for path in FOLDER.rglob("*") if path.is_file()]
    assert not [path for path in files if path.suffix in PICKLED]
    weights = sum(path.stat().st_size for path in files if path.suffix == ".safetensors")
    assert PACK.size_budget_mb and weights / 1e6 <= PACK.size_budget_mb


def test_generator_and_classifiers_work_at_the_datas_128_px():
    vae = json.loads((FOLDER / "base" / "vae" / "config.json").read_text())
    unet = json.loads((FOLDER / "base" / "unet" / "config.json").read_text())
    assert vae["sample_size"] == 128
    assert unet["sample_size"] * 2 ** (len(vae["block_out_channels"]) - 1) == 128  # latents × the VAE's factor
    for domain in REGISTRY.trained_domains("mini"):
        record = json.loads((FOLDER / "classifiers" / domain / "training_classifier.json").read_text())
        assert record["config"]["image_size"] == 128, domain
