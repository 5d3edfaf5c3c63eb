"""Training compute of a pack, from its training records, against a baseline pack.

    python bench/training_compute.py [--pack assets/models/mini] [--baseline OLD_PACK_FOLDER]

Every run the pack's records name (the autoencoder, each base run of the chain, the adapters, classifiers and
CLIP) is counted as steps × batch × the FLOPs of one example's forward and backward pass through the network it
trains, counted by torch's FlopCounterMode on that pack's own architecture at the run's input size. Frozen
helpers (text encoder, the autoencoder that makes latents, perceptual and adversarial loss networks) are left
out for both packs alike, so the ratio compares what the trained networks themselves cost. A LoRA run counts
the backward pass its frozen UNet really does (activation gradients, no weight gradients). Wall time and
hardware are the records'. Classifier epochs need the domain's train count (`../shared/data`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: E402

from medsynth.data.folders import load_metadata  # noqa: E402
from medsynth.models.classifier import load_classifier  # noqa: E402
from medsynth.models.lora import add_lora  # noqa: E402
from medsynth.pack.assemble import DECODER_RECORD, base_records  # noqa: E402
from medsynth.paths import domain_folder  # noqa: E402


@dataclass
class Run:
    component: str
    steps: int  # optimiser steps
    batch: int
    gflop_per_example: float  # forward + backward
    wall_s: float
    hardware: str

    @property
    def pflop(self) -> float:
        return self.steps * self.batch * self.gflop_per_example / 1e6


def counted_gflop(step) -> float:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / 1e9


def _record(path: Path) -> dict:
    return json.loads(path.read_text())


def _run(component: str, record: dict, steps: int, batch: int, gflop: float) -> Run:
    return Run(component, steps, batch, gflop, record.get("wall_time_s", 0.0), record.get("hardware", "?"))


@cache  # one count per architecture and input, however many runs trained it
def autoencoder_gflop(vae_folder: Path, size: int, decoder_only: bool) -> float:
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(vae_folder)).float()
    x = torch.randn(1, 3, size, size)

    def step():
        if decoder_only:  # the frozen encoder runs forward only
            vae.encoder.requires_grad_(False)
            vae.quant_conv.requires_grad_(False)
            with torch.no_grad():
                latents = vae.encode(x).latent_dist.sample()
        else:
            latents = vae.encode(x).latent_dist.sample()
        vae.decode(latents).sample.mean().backward()

    return counted_gflop(step)


@cache
def unet_gflop(unet_folder: Path, latent_size: int, max_tokens: int, lora: tuple[int, str] | None = None) -> float:
    """One UNet training step's GFLOP per example; `lora` = (rank, targets) counts an adapter on the frozen UNet."""
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(unet_folder)).float()
    if lora is not None:
        add_lora(unet, rank=lora[0], targets=lora[1])
    latents = torch.randn(1, unet.config.in_channels, latent_size, latent_size)
    text = torch.randn(1, max_tokens, unet.config.cross_attention_dim)
    return counted_gflop(lambda: unet(latents, torch.tensor([500]), text).sample.mean().backward())


def classifier_gflop(folder: Path) -> float:
    model, config = load_classifier(folder)
    x = torch.randn(1, 3, config.image_size, config.image_size)
    return counted_gflop(lambda: model.train()(x).mean().backward())


def clip_gflop(clip_folder: Path) -> float:
    import open_clip

    cfg = _record(clip_folder / "open_clip_config.json")["model_cfg"]
    model = open_clip.CLIP(**cfg)
    size = cfg["vision_cfg"]["image_size"]
    image = torch.randn(1, 3, size, size)
    text = torch.randint(0, cfg["text_cfg"]["vocab_size"], (1, cfg["text_cfg"]["context_length"]))

    def step():
        image_features, text_features, scale = model(image, text)
        (scale * image_features @ text_features.T).sum().backward()

    return counted_gflop(step)


def latent_size(pack: Path, resolution: int) -> int:
    vae = AutoencoderKL.load_config(pack / "base" / "vae")
    return resolution // 2 ** (len(vae["block_out_channels"]) - 1)


def pack_runs(pack: Path) -> tuple[list[Run], list[str]]:
    """Every recorded run of the pack, and the runs its records continue from but do not hold."""
    runs, missing = [], []
    base = pack / "base"
    for name in ("training_autoencoder.json", DECODER_RECORD):
        if not (base / name).is_file():
            continue
        record = _record(base / name)
        c = record["config"]
        size = c.get("crop") or c["resolution"]
        gflop = autoencoder_gflop(base / "vae", size, bool(c.get("decoder_only")))
        runs.append(_run(f"autoencoder ({name})", record, record["steps"], c["batch_size"], gflop))
    if (base / DECODER_RECORD).is_file() and (init_vae := _record(base / DECODER_RECORD)["config"].get("init_vae")):
        first_out = Path(_record(base / "training_autoencoder.json")["config"]["out"]).name
        if Path(init_vae).parent.name != first_out:
            missing.append(f"the decoder run {init_vae} continued from (its record is not in the pack)")
    for path in base_records(base):
        record = _record(path)
        c = record["config"]
        gflop = unet_gflop(base / "unet", latent_size(pack, c["resolution"]), c.get("max_tokens", 64))
        runs.append(_run(f"base ({Path(c['out']).name})", record, record["steps"], c["batch_size"], gflop))
    base_latents = latent_size(pack, _record(base / "training_base.json")["config"]["resolution"])
    for path in sorted(pack.glob("lora/*/training_lora_*.json")):
        record = _record(path)
        c = record["config"]
        gflop = unet_gflop(base / "unet", base_latents, 64, lora=(c.get("rank", 8), c.get("targets", "attention")))
        runs.append(_run(f"LoRA {c['domain']}", record, record["steps"], c["batch_size"], gflop))
    for path in sorted(pack.glob("classifiers/*/training_classifier.json")):
        record = _record(path)
        c = record["config"]
        train = int((load_metadata(domain_folder(c["domain"]))["split"] == "train").sum())
        steps = record["steps"] * max(1, train // c["batch_size"])  # the record counts epochs
        gflop = classifier_gflop(path.parent)
        runs.append(_run(f"classifier {c['domain']}", record, steps, c["batch_size"], gflop))
    if (pack / "clip" / "training_clip.json").is_file():
        record = _record(pack / "clip" / "training_clip.json")
        runs.append(_run("CLIP", record, record["steps"], record["config"]["batch_size"], clip_gflop(pack / "clip")))
    return runs, missing


def _table(pack: Path, runs: list[Run], missing: list[str]) -> tuple[float, float]:
    print(f"\n## {pack}\n")
    print("| run | steps | batch | GFLOP per example (fwd + bwd) | PFLOP | wall time | hardware |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in runs:
        print(f"| {r.component} | {r.steps:,} | {r.batch} | {r.gflop_per_example:.2f} | {r.pflop:.1f} | "
              f"{r.wall_s / 3600:.2f} h | {r.hardware} |")  # fmt: skip
    total, wall = sum(r.pflop for r in runs), sum(r.wall_s for r in runs)
    print(f"| **total** | | | | **{total:.1f}** | **{wall / 3600:.1f} h** | |")
    for line in missing:
        print(f"\nNot counted: {line}.")
    return total, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", type=Path, default=Path("assets/models/mini"))
    parser.add_argument("--baseline", type=Path, default=None, help="an earlier pack folder to compare with")
    args = parser.parse_args()
    torch.manual_seed(0)
    total, wall = _table(args.pack, *pack_runs(args.pack))
    if args.baseline:
        base_total, base_wall = _table(args.baseline, *pack_runs(args.baseline))
        print(f"\n{args.pack} against {args.baseline}: {total / base_total:.1f}× the training FLOPs, "
              f"{wall / base_wall:.1f}× the wall time")  # fmt: skip


if __name__ == "__main__":
    main()
