"""`medsynth domains` and `medsynth generate`: what the pack can serve, and images with provenance on disk."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medsynth.cli.parsing import EXIT_OK, CommandFailure, UsageError, attribute


def load_engine(registry, pack: str, device: str | None = None):
    """The pack's engine, libraries quieted; a pack that cannot load is a one-line failure."""
    from medsynth.generation.engine import MedSynth, PackUnavailableError
    from medsynth.generation.pipeline import quiet_libraries

    quiet_libraries()
    try:
        return MedSynth(registry, pack, device)
    except PackUnavailableError as error:
        raise CommandFailure(str(error)) from None


def cmd_domains(args: argparse.Namespace) -> int:
    from medsynth.registry import selected_pack_name

    registry = args.registry
    pack = args.pack or selected_pack_name()
    try:
        pack_status = registry.pack_availability(pack)
    except KeyError as error:
        raise UsageError(str(error)) from None
    print(f"pack {pack}: {'available' if pack_status.available else 'UNAVAILABLE: ' + pack_status.reason}")
    for name, status in registry.domain_availability(pack).items():
        domain = registry.get_domain(name)
        state = "available" if status.available else f"unavailable ({status.reason})"
        print(f"\n{name} — {domain.display_name}, {domain.modality}: {state}")
        for info in domain.classes:
            print(f"  {info.code:<12} {info.name}: {info.description}")
        for item in domain.attributes:
            values = ", ".join(item.choices) if item.choices else f"{item.min}–{item.max}"
            print(f"  [attribute] {item.name}: {values}")
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from medsynth.generation.engine import GenerationRequest, RequestError, check_request
    from medsynth.generation.results import write_result
    from medsynth.registry import selected_pack_name

    if args.label is None and args.prompt is None:
        raise UsageError("generate: give --label or --prompt (or both)")
    registry = args.registry
    pack = args.pack or selected_pack_name()
    request = GenerationRequest(
        domain=args.domain, label=args.label, findings=args.prompt, attributes=dict(args.attr or []), n=args.n, seed=args.seed,
        steps=args.steps, guidance=args.guidance, validate=args.validate, max_rounds=args.max_rounds, threshold=args.threshold,
        use_adapter=not args.no_adapter,
    )  # fmt: skip
    try:
        registry.get_pack(pack)
        check_request(registry, pack, request)  # fail fast, before any model is loaded
    except (RequestError, KeyError) as error:
        raise UsageError(f"generate: {error}") from None
    engine = load_engine(registry, pack)
    with tqdm(total=1, desc="generating", unit="step", disable=args.quiet) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        def on_round(n_images: int) -> None:
            bar.reset()
            bar.set_description(f"generating {n_images} image(s)")

        result = engine.run(request, progress=progress, on_round=on_round)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    paths = write_result(result, args.out, include_rejected=args.keep_rejected)
    print(f"prompt: {result.prompt}")
    print(f"seed: {result.seed}  steps: {result.steps}  guidance: {result.guidance:g}  rounds: {result.rounds}")
    if result.acceptance_rate is not None:
        print(f"classifier agreement: {result.acceptance_rate:.0%} of {len(result.attempts)} generated")
    print(f"wrote {len(paths)} image(s) and manifest.csv to {args.out}")
    if not result.images and not args.keep_rejected:
        print("warning: no image passed validation; --keep-rejected also writes the rejected attempts", file=sys.stderr)
    return EXIT_OK


def add_commands(commands) -> None:
    domains = commands.add_parser("domains", help="list domains, their classes and whether the pack can serve them")
    domains.add_argument("--pack", default=None, help="model pack (default: $MEDSYNTH_PACK or mini)")
    domains.set_defaults(func=cmd_domains)

    generate = commands.add_parser(
        "generate",
        help="generate images for one domain and class or free-text findings",
        description="Generate synthetic images; writes PNGs (with provenance) and manifest.csv into --out.",
    )
    generate.add_argument("--domain", required=True, help="domain name, see `medsynth domains`")
    generate.add_argument("--label", default=None, help="class code within the domain (e.g. mel)")
    generate.add_argument(
        "--prompt", default=None, help="free-text findings; extends the class prompt when --label is given"
    )
    generate.add_argument(
        "--attr",
        type=attribute,
        action="append",
        metavar="NAME=VALUE",
        help="optional attribute, e.g. site=back (repeatable)",
    )
    generate.add_argument("--n", type=int, default=4, help="number of images (1–64)")
    generate.add_argument(
        "--seed", type=int, default=None, help="first seed; image i uses seed+i (default: random, printed)"
    )
    generate.add_argument("--steps", type=int, default=None, help="denoising steps (1–150; default: the pack's)")
    generate.add_argument(
        "--guidance",
        type=float,
        default=None,
        help="classifier-free guidance scale (0–30; default: the domain's in the pack)",
    )
    generate.add_argument("--validate", action="store_true", help="regenerate images the classifier rejects")
    generate.add_argument("--max-rounds", type=int, default=3, help="validation rounds at most (1–10)")
    generate.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="classifier confidence needed to accept (0–1); default: each class's median probability on real val images",
    )
    generate.add_argument("--keep-rejected", action="store_true", help="also write images the validation rejected")
    generate.add_argument("--no-adapter", action="store_true", help="use the bare shared base (no domain LoRA)")
    generate.add_argument("--pack", default=None, help="model pack (default: $MEDSYNTH_PACK or mini)")
    generate.add_argument("--out", type=Path, required=True, help="output folder")
    generate.add_argument("--quiet", action="store_true", help="no progress bar")
    generate.set_defaults(func=cmd_generate)
