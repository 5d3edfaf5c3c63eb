"""`medsynth counterfactual`: one image redrawn as another class ("what the disease changes"), with provenance."""

from __future__ import annotations

import argparse
from pathlib import Path

from medsynth.cli.parsing import EXIT_OK, CommandFailure, UsageError


def cmd_counterfactual(args: argparse.Namespace) -> int:
    from PIL import Image, UnidentifiedImageError

    from medsynth.cli.generate import load_engine
    from medsynth.generation.counterfactual import DEFAULT_STRENGTH, CounterfactualRequest, make_counterfactual
    from medsynth.generation.engine import RequestError, resolve_domain
    from medsynth.generation.provenance import read_provenance
    from medsynth.generation.results import write_counterfactual
    from medsynth.registry import selected_pack_name

    registry = args.registry
    pack = args.pack or selected_pack_name()
    request = CounterfactualRequest(
        domain=args.domain, target=args.to, strength=DEFAULT_STRENGTH if args.strength is None else args.strength, n=args.n, seed=args.seed, steps=args.steps,
        guidance=args.guidance,
    )  # fmt: skip
    try:
        registry.get_pack(pack)
        request.check()
        resolve_domain(registry, pack, args.domain).get_class(args.to)  # fail fast, before any model is loaded
    except (RequestError, KeyError) as error:
        raise UsageError(f"counterfactual: {error}") from None
    try:
        with Image.open(args.source) as opened:
            source = opened.copy()
            embedded = read_provenance(opened)  # a generated image's own record; {} for a real image
    except FileNotFoundError:
        raise UsageError(f"counterfactual: --source {args.source}: no such file") from None
    except (UnidentifiedImageError, OSError) as error:
        raise UsageError(f"counterfactual: --source {args.source} is not a readable image ({error})") from None
    source_info = {"file": str(args.source)}
    if args.source_label:
        source_info["label"] = args.source_label
    if embedded.get("synthetic"):
        source_info = {"kind": "generated image", **source_info, "record": embedded}
    engine = load_engine(registry, pack)
    try:
        result = make_counterfactual(engine, source, request, source_info)
    except RequestError as error:
        raise CommandFailure(f"counterfactual: {error}") from None
    paths = write_counterfactual(result, args.out)
    before = result.source_score.probabilities.get(result.request.target, 0.0)
    print(f"prompt: {result.prompt}  strength: {result.strength:g}  steps: {result.steps}  seed: {result.seed}")
    print(f"classifier: source read as {result.source_score.predicted} (p({request.target}) = {before:.2f})")
    for item in result.items:
        score, kept = item.image.classifier, item.kept
        print(
            f"  seed {item.image.seed}: read as {score.predicted} (p({request.target}) = "
            f"{score.probability(request.target):.2f}), pixel correlation {kept.pixel_correlation:.2f}, "
            f"SSIM outside the change {kept.ssim_outside_change:.2f}"
        )
    print(f"wrote {len(paths)} file(s) and manifest.csv to {args.out}")
    return EXIT_OK


def add_commands(commands) -> None:
    command = commands.add_parser(
        "counterfactual",
        help="redraw an image as another class (what the disease changes): PNGs, heat maps and manifest.csv",
        description="SDEdit counterfactual: the source is noised to --strength and denoised with the target class's "
        "prompt and its domain's adapter. Writes the source, each counterfactual (marked SYNTHETIC, with provenance "
        "naming the source), a difference heat map per counterfactual and manifest.csv.",
    )
    command.add_argument("--domain", required=True, help="domain name, see `medsynth domains`")
    command.add_argument("--source", type=Path, required=True, help="the image to start from (real or generated)")
    command.add_argument("--to", required=True, help="class code the image is redrawn as (e.g. pneumonia)")
    command.add_argument("--source-label", default=None, help="the source's own class, when known (for provenance)")
    command.add_argument(
        "--strength", type=float, default=None, help="how far the source is noised, 0.1–1 (default: 0.6)"
    )
    command.add_argument("--n", type=int, default=1, help="counterfactuals, one per seed (1–16)")
    command.add_argument("--seed", type=int, default=None, help="first seed (default: random, printed)")
    command.add_argument(
        "--steps", type=int, default=None, help="denoising steps of the full schedule (default: the pack's)"
    )
    command.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the domain's)")
    command.add_argument("--pack", default=None, help="model pack (default: $MEDSYNTH_PACK or mini)")
    command.add_argument("--out", type=Path, required=True, help="output folder")
    command.set_defaults(func=cmd_counterfactual)
