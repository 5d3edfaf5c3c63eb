"""Research commands: `export` a synthetic dataset, `evaluate` a folder of generated images, `evaluate-pack`,
`evaluate-autoencoder`, `sweep-sampling` and `augment-experiment`."""

from __future__ import annotations

import argparse
from pathlib import Path

from medsynth.cli.generate import load_engine
from medsynth.cli.parsing import EXIT_OK, CommandFailure, ConfigCommand, UsageError, add_config_command

EVALUATE_PACK = ConfigCommand(
    "medsynth.research.config:PackEvaluationConfig", "medsynth.research.evaluate_pack:evaluate_pack"
)
EVALUATE_AUTOENCODER = ConfigCommand(
    "medsynth.research.config:AutoencoderEvaluationConfig",
    "medsynth.research.evaluate_autoencoder:evaluate_autoencoder",
)
SWEEP_SAMPLING = ConfigCommand(
    "medsynth.research.config:SamplingSweepConfig", "medsynth.research.sampling_sweep:sweep_sampling"
)
EVALUATE_COUNTERFACTUALS = ConfigCommand(
    "medsynth.research.config:CounterfactualEvaluationConfig",
    "medsynth.research.counterfactual_report:evaluate_counterfactuals",
)
AUGMENT_EXPERIMENT = ConfigCommand(
    "medsynth.research.config:AugmentExperimentConfig", "medsynth.research.augment_experiment:run_experiment"
)


def cmd_export(args: argparse.Namespace) -> int:
    from medsynth.generation.engine import GenerationRequest, RequestError, check_request
    from medsynth.precision import launched_processes
    from medsynth.registry import selected_pack_name
    from medsynth.research.synthetic_dataset import ExportPlan, export_dataset, merge_shards

    if not 1 <= args.per_class <= 100_000:
        raise UsageError(f"export: --per-class must be between 1 and 100000; got {args.per_class}")
    registry = args.registry
    pack = args.pack or selected_pack_name()
    try:
        registry.get_pack(pack)
        domain = check_request(
            registry, pack, GenerationRequest(domain=args.domain, label=None, findings="check", steps=args.steps)
        )
    except (RequestError, KeyError) as error:
        raise UsageError(f"export: {error}") from None
    state = launched_processes()  # rank and world size under `accelerate launch`; one process otherwise
    engine = load_engine(registry, pack, device=str(state.device))
    plan = ExportPlan(
        domain.name,
        args.per_class,
        args.chunk,
        args.seed,
        args.validate,
        args.threshold,
        args.max_rounds,
        args.steps,
        args.mark,
    )
    export_dataset(engine, plan, args.out, state.process_index, state.num_processes)
    state.wait_for_everyone()
    if state.is_main_process:
        metadata = merge_shards(args.out, state.num_processes) if state.num_processes > 1 else args.out / "metadata.csv"
        print(f"exported {args.per_class} image(s) per class of {domain.name} to {args.out} ({metadata.name})")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from medsynth.generation.pipeline import quiet_libraries
    from medsynth.research.evaluate_generated import evaluate_generated

    if not args.generated.is_dir():
        raise UsageError(f"evaluate: {args.generated} is not a folder")
    try:
        args.registry.get_domain(args.domain)
    except KeyError as error:
        raise UsageError(f"evaluate: {error}") from None
    quiet_libraries()
    try:
        report = evaluate_generated(
            args.registry,
            args.domain,
            args.generated,
            args.out or args.generated / "evaluation",
            args.pack,
            args.evaluators,
        )
    except (FileNotFoundError, ValueError) as error:
        raise CommandFailure(str(error)) from None
    print(f"wrote {report} and results.json")
    return EXIT_OK


def add_commands(commands) -> None:
    export = commands.add_parser(
        "export",
        help="export a synthetic labelled dataset (ImageFolder + metadata.csv); resumable, data-parallel",
        description="Export a synthetic dataset: <out>/<label>/*.png and metadata.csv. Re-running resumes. "
        "Under `accelerate launch` each process takes its share by rank.",
    )
    export.add_argument("--domain", required=True, help="domain name, see `medsynth domains`")
    export.add_argument("--per-class", type=int, required=True, help="images per class (1–100000)")
    export.add_argument("--out", type=Path, required=True, help="output folder (<label>/ subfolders and metadata.csv)")
    export.add_argument("--validate", action="store_true", help="regenerate what the classifier rejects")
    export.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="classifier confidence needed to accept (0–1); default: each class's median probability on real val images",
    )
    export.add_argument("--max-rounds", type=int, default=3, help="validation rounds at most (1–10)")
    export.add_argument("--steps", type=int, default=None, help="denoising steps (default: the pack's)")
    export.add_argument("--seed", type=int, default=0, help="first seed; every chunk's seeds follow from it")
    export.add_argument("--chunk", type=int, default=8, help="images generated per batch (the unit of resumption)")
    export.add_argument("--mark", action="store_true", help="burn the visible SYNTHETIC mark into the pixels")
    export.add_argument("--pack", default=None, help="model pack (default: $MEDSYNTH_PACK or mini)")
    export.set_defaults(func=cmd_export)

    evaluate = commands.add_parser(
        "evaluate",
        help="measure a folder of generated images against the real test split",
        description="Fréchet distance and KID (EfficientNet-Lite0 features), Inception FID when its weights are cached, "
        "CLIP score, evaluator macro-F1 and confusion matrix, nearest training images; JSON + Markdown report.",
    )
    evaluate.add_argument("--domain", required=True, help="domain the images belong to, see `medsynth domains`")
    evaluate.add_argument(
        "--generated", type=Path, required=True, help="folder with metadata.csv (export) or manifest.csv (generate)"
    )
    evaluate.add_argument("--out", type=Path, default=None, help="report folder (default: <generated>/evaluation)")
    evaluate.add_argument(
        "--pack", default=None, help="pack whose CLIP model scores alignment (default: $MEDSYNTH_PACK or mini)"
    )
    evaluate.add_argument(
        "--evaluators", type=Path, default=None,
        help="evaluator set whose panel (every seed of the domain) scores the images (default: runs/evaluators)",
    )  # fmt: skip
    evaluate.set_defaults(func=cmd_evaluate)

    add_config_command(commands, "evaluate-pack", EVALUATE_PACK)
    add_config_command(commands, "evaluate-autoencoder", EVALUATE_AUTOENCODER)
    add_config_command(commands, "sweep-sampling", SWEEP_SAMPLING)
    add_config_command(commands, "evaluate-counterfactuals", EVALUATE_COUNTERFACTUALS)
    add_config_command(commands, "augment-experiment", AUGMENT_EXPERIMENT)
