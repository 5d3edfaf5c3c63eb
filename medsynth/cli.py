"""`python -m medsynth`: list domains, generate images; every command documents itself with --help."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def option_flag(field_name: str) -> str:
    """The command-line flag of a config dataclass field (one rule for parsing and for printing commands)."""
    return "--" + field_name.replace("_", "-")


def command_line(command: str, options: dict) -> str:
    """`command` followed by `--flag value` per option: how reports and the model card say what to run."""
    return command + "".join(f" {option_flag(name)} {option_value(value)}" for name, value in options.items())


def option_value(value) -> str:
    """A config value as its flag takes it: yes/no, sequences comma-separated (also as a JSON record stores them)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def changed_options(values: dict, defaults: dict, keys) -> dict[str, str]:
    """The options among `keys` whose value differs from the default, written as the command line takes them."""
    return {k: option_value(values[k]) for k in keys if k in values and k in defaults and option_value(values[k]) != option_value(defaults[k])}


def _attribute(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"attribute must look like name=value, got {text!r}")
    name, value = text.split("=", 1)
    return name.strip(), value.strip()


def quiet_libraries() -> None:
    """Progress bars and chatter of diffusers/transformers are noise in a CLI or web app."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


# ------------------------------------------------------------------ commands


def cmd_domains(args: argparse.Namespace) -> int:
    from .registry import load_registry, selected_pack_name

    registry = load_registry(args.registry)
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
        for attribute in domain.attributes:
            values = ", ".join(attribute.choices) if attribute.choices else f"{attribute.min}–{attribute.max}"
            print(f"  [attribute] {attribute.name}: {values}")
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .engine import GenerationRequest, MedSynth, PackUnavailableError, RequestError, check_request
    from .export import write_result
    from .registry import load_registry, selected_pack_name

    if args.label is None and args.prompt is None:
        raise UsageError("generate: give --label or --prompt (or both)")
    registry = load_registry(args.registry)
    pack = args.pack or selected_pack_name()
    request = GenerationRequest(
        domain=args.domain,
        label=args.label,
        findings=args.prompt,
        attributes=dict(args.attr or []),
        n=args.n,
        seed=args.seed,
        steps=args.steps,
        guidance=args.guidance,
        validate=args.validate,
        max_rounds=args.max_rounds,
        threshold=args.threshold,
        use_adapter=not args.no_adapter,
    )
    try:
        registry.get_pack(pack)
        check_request(registry, pack, request)  # fail fast, before any model is loaded
    except (RequestError, KeyError) as error:
        raise UsageError(f"generate: {error}") from None
    quiet_libraries()
    try:
        engine = MedSynth.load(pack, registry)
    except PackUnavailableError as error:
        print(f"medsynth: {error}", file=sys.stderr)
        return EXIT_FAILURE
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


def cmd_from_config(args: argparse.Namespace) -> int:
    """Commands whose options are the fields of a config dataclass (training, pack evaluation)."""
    import importlib

    module_name, config_name, function_name = args.target
    module = importlib.import_module(module_name)
    config = getattr(module, config_name)(**{k: v for k, v in vars(args).items() if k in args.config_fields and v is not None})
    quiet_libraries()
    from .registry import UnknownNameError

    try:
        result = getattr(module, function_name)(config)
    except (UnknownNameError, ValueError, FileNotFoundError) as error:  # bad names or inputs: one line, no traceback
        print(f"medsynth: {error.args[0] if isinstance(error, KeyError) and error.args else error}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"done, wrote {result}")
    return EXIT_OK


# component → (module, config dataclass, function taking the config)
TRAINABLE = {
    "autoencoder": ("medsynth.training.autoencoder", "AutoencoderTrainConfig", "train_autoencoder"),
    "base": ("medsynth.training.base", "BaseTrainConfig", "train_base"),
    "lora": ("medsynth.training.lora", "LoraTrainConfig", "train_lora"),
    "classifier": ("medsynth.training.classifier", "ClassifierTrainConfig", "train_classifier"),
    "clip": ("medsynth.training.clip", "ClipTrainConfig", "train_clip"),
    "evaluator": ("medsynth.training.evaluator", "EvaluatorTrainConfig", "train_evaluator"),
    "pack": ("medsynth.training.pack", "PackAssembleConfig", "assemble_pack"),
    "model-card": ("medsynth.training.model_card", "ModelCardConfig", "render_model_card"),
}
EVALUATE_PACK = ("medsynth.pack_evaluation", "PackEvaluationConfig", "evaluate_pack")
EVALUATE_AUTOENCODER = ("medsynth.autoencoder_evaluation", "AutoencoderEvaluationConfig", "evaluate_autoencoder")
AUGMENT_EXPERIMENT = ("medsynth.augment_experiment", "AugmentExperimentConfig", "run_experiment")


def _add_config_options(parser: argparse.ArgumentParser, config_cls: type) -> list[str]:
    """One --option per dataclass field; tuples are comma-separated, booleans take yes/no."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(config_cls)
    names = []
    for item in dataclasses.fields(config_cls):
        hint = hints[item.name]
        origin = typing.get_origin(hint)
        if origin is tuple:
            inner = typing.get_args(hint)[0]
            convert = lambda text, inner=inner: tuple(inner(part) for part in text.split(",") if part)  # noqa: E731
        elif hint is bool:
            convert = lambda text: text.lower() in ("1", "yes", "true", "on")  # noqa: E731
        elif hint in (int, float, str, Path) or hint == Path | None:
            convert = Path if "Path" in str(hint) else hint
        else:
            continue
        default = item.default if item.default is not dataclasses.MISSING else "(computed)"
        parser.add_argument(option_flag(item.name), dest=item.name, type=convert, default=None, help=f"default: {default}")
        names.append(item.name)
    return names


# ---- research: `medsynth export`


def cmd_export(args: argparse.Namespace) -> int:
    import torch
    from accelerate import PartialState

    from .dataset_export import ExportPlan, export_dataset, merge_shards
    from .engine import GenerationRequest, MedSynth, PackUnavailableError, RequestError, check_request
    from .registry import load_registry, selected_pack_name

    if not 1 <= args.per_class <= 100_000:
        raise UsageError(f"export: --per-class must be between 1 and 100000; got {args.per_class}")
    registry = load_registry(args.registry)
    pack = args.pack or selected_pack_name()
    try:
        registry.get_pack(pack)
        domain = check_request(registry, pack, GenerationRequest(domain=args.domain, label=None, findings="check", steps=args.steps))
    except (RequestError, KeyError) as error:
        raise UsageError(f"export: {error}") from None
    # rank and world size under `accelerate launch` (gloo on CPU-only machines); one process otherwise
    state = PartialState(cpu=not torch.cuda.is_available())
    quiet_libraries()
    try:
        engine = MedSynth.load(pack, registry, device=str(state.device))
    except PackUnavailableError as error:
        print(f"medsynth: {error}", file=sys.stderr)
        return EXIT_FAILURE
    plan = ExportPlan(domain.name, args.per_class, args.chunk, args.seed, args.validate, args.threshold, args.max_rounds, args.steps, args.mark)
    export_dataset(engine, plan, args.out, state.process_index, state.num_processes)
    state.wait_for_everyone()
    if state.is_main_process:
        metadata = merge_shards(args.out, state.num_processes) if state.num_processes > 1 else args.out / "metadata.csv"
        print(f"exported {args.per_class} image(s) per class of {domain.name} to {args.out} ({metadata.name})")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .dataset_evaluation import evaluate_generated
    from .registry import load_registry

    if not args.generated.is_dir():
        raise UsageError(f"evaluate: {args.generated} is not a folder")
    registry = load_registry(args.registry)
    try:
        registry.get_domain(args.domain)
    except KeyError as error:
        raise UsageError(f"evaluate: {error}") from None
    quiet_libraries()
    try:
        report = evaluate_generated(args.domain, args.generated, args.out or args.generated / "evaluation", args.pack)
    except (FileNotFoundError, ValueError) as error:
        print(f"medsynth: {error}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"wrote {report} and results.json")
    return EXIT_OK


def _add_evaluate_command(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="measure a folder of generated images against the real test split",
        description="Fréchet distance and KID (EfficientNet-Lite0 features), Inception FID when its weights are cached, "
        "CLIP score, evaluator macro-F1 and confusion matrix, nearest training images; JSON + Markdown report.",
    )
    evaluate.add_argument("--domain", required=True)
    evaluate.add_argument("--generated", type=Path, required=True, help="folder with metadata.csv (export) or manifest.csv (generate)")
    evaluate.add_argument("--out", type=Path, default=None, help="report folder (default: <generated>/evaluation)")
    evaluate.add_argument("--pack", default=None, help="pack whose CLIP model scores alignment")
    evaluate.set_defaults(func=cmd_evaluate)


def _add_export_command(commands) -> None:
    export = commands.add_parser(
        "export",
        help="export a synthetic labelled dataset (ImageFolder + metadata.csv); resumable, data-parallel",
        description="Export a synthetic dataset: <out>/<label>/*.png and metadata.csv. Re-running resumes. "
        "Under `accelerate launch` each process takes its share by rank.",
    )
    export.add_argument("--domain", required=True)
    export.add_argument("--per-class", type=int, required=True, help="images per class")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--validate", action="store_true", help="regenerate what the classifier rejects")
    export.add_argument("--threshold", type=float, default=0.5)
    export.add_argument("--max-rounds", type=int, default=3)
    export.add_argument("--steps", type=int, default=None)
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--chunk", type=int, default=8, help="images generated per batch (the unit of resumption)")
    export.add_argument("--mark", action="store_true", help="burn the visible SYNTHETIC mark into the pixels")
    export.add_argument("--pack", default=None)
    export.set_defaults(func=cmd_export)


def _add_config_command(subparsers, name: str, target: tuple[str, str, str]) -> None:
    import importlib

    module_name, config_name, _ = target
    config_cls = getattr(importlib.import_module(module_name), config_name)
    summary = (config_cls.__doc__ or name).strip().splitlines()[0]
    part = subparsers.add_parser(name, help=summary, description=summary)
    part.set_defaults(func=cmd_from_config, target=target, config_fields=_add_config_options(part, config_cls))


# ---- reader studies: `medsynth study create|list|close|export|stats`


def _study_store(args: argparse.Namespace):
    from .studies import StudyError, StudyStore, default_db_path

    path = args.db or default_db_path()
    if args.study_command != "create" and not Path(path).is_file():
        raise UsageError(f"study {args.study_command}: no study database at {path} (give --db or create a study first)")
    try:
        return StudyStore(path)
    except StudyError as error:
        raise UsageError(f"study: {error}") from None


def _study_errors(function):
    """Study errors (unknown code, bad design, ...) are usage errors: one line, exit code 2."""
    import functools

    @functools.wraps(function)
    def wrapper(args: argparse.Namespace) -> int:
        from .studies import StudyError

        try:
            return function(args)
        except StudyError as error:
            raise UsageError(f"study {args.study_command}: {error}") from None

    return wrapper


@_study_errors
def cmd_study_create(args: argparse.Namespace) -> int:
    from .engine import MedSynth, PackUnavailableError
    from .registry import load_registry, selected_pack_name
    from .studies import StudySpec
    from .studies.build import build_study, draw_real, resolve_cells

    registry = load_registry(args.registry)
    spec = StudySpec(
        title=args.title,
        cells=resolve_cells(registry, args.domains, args.classes or []),
        n_synthetic=args.synthetic,
        n_real=args.real,
        seed=args.seed,
        asks_alignment=not args.no_alignment,
        raters=tuple(r for part in args.raters or [] for r in part.split(",") if r),
        image_size=args.image_size,
        match_resolution=not args.keep_real_resolution,
    )
    spec.check()
    draw_real(spec.cells, spec.n_real, spec.seed, args.data)  # fail fast, before any model is loaded
    engine = None
    if spec.n_synthetic:
        pack = args.pack or selected_pack_name()
        try:
            registry.get_pack(pack)
        except KeyError as error:
            raise UsageError(f"study create: {error}") from None
        quiet_libraries()
        try:
            engine = MedSynth.load(pack, registry)
        except PackUnavailableError as error:
            print(f"medsynth: {error}", file=sys.stderr)
            return EXIT_FAILURE
    store = _study_store(args)
    study = build_study(store, spec, registry, engine, args.data)
    print(f"study {study.code} created: {len(store.items(study.code))} images in {store.path}")
    print(f"raters sign in to the Rate tab with code {study.code}")
    return EXIT_OK


@_study_errors
def cmd_study_list(args: argparse.Namespace) -> int:
    studies = _study_store(args).list_studies()
    if not studies:
        print("no studies yet")
    for s in studies:
        print(f"{s.code}  {s.status:<6}  items {s.items:>4}  raters {s.raters:>3}  ratings {s.ratings:>5}  {s.created}  {s.title}")
    return EXIT_OK


@_study_errors
def cmd_study_close(args: argparse.Namespace) -> int:
    study = _study_store(args).close_study(args.code)
    print(f"study {study.code} closed at {study.closed}")
    return EXIT_OK


@_study_errors
def cmd_study_export(args: argparse.Namespace) -> int:
    from .studies.export import export_study

    result = export_study(_study_store(args), args.code, args.out, pseudonymise=args.pseudonymise, images=args.images)
    print(f"wrote {result.ratings} rating(s) and {result.items} item(s) to {result.folder}: " + ", ".join(p.name for p in result.files[:4]))
    return EXIT_OK


@_study_errors
def cmd_study_stats(args: argparse.Namespace) -> int:
    from .studies.stats import analyse

    store = _study_store(args)
    study = store.get_study(args.code)
    print(f"study {study.code} — {study.title} ({study.status})")
    print(analyse(store.ratings(study.code)).text())
    return EXIT_OK


def _add_study_commands(commands) -> None:
    study = commands.add_parser(
        "study",
        help="expert reader studies: create, list, close, export, stats",
        description="Blinded reader studies (realism, prompt alignment, real or synthetic). "
        "The database is --db, $MEDSYNTH_STUDIES_DB or runs/studies/studies.db.",
    )
    parts = study.add_subparsers(dest="study_command", metavar="ACTION", parser_class=Parser, required=True)

    def part(name: str, help_text: str, func) -> argparse.ArgumentParser:
        parser = parts.add_parser(name, help=help_text.replace("%", "%%"), description=help_text)
        parser.add_argument("--db", type=Path, default=None, help="study database (default: $MEDSYNTH_STUDIES_DB or runs/studies/studies.db)")
        parser.set_defaults(func=func)
        return parser

    create = part("create", "generate and draw the images once, freeze them, open a study; prints its code", cmd_study_create)
    create.add_argument("--domains", nargs="+", required=True, metavar="DOMAIN", help="domains, see `medsynth domains`")
    create.add_argument("--classes", nargs="+", metavar="CLASS", help="class codes, or domain/code (default: every class)")
    create.add_argument("--synthetic", type=int, required=True, metavar="N", help="synthetic images per class (0–500)")
    create.add_argument("--real", type=int, required=True, metavar="N", help="real images per class (0–500), test split first")
    create.add_argument("--seed", type=int, required=True, help="draws the real images, the generation seeds and each rater's order")
    create.add_argument("--title", default="Reader study", help="title shown to the admin")
    create.add_argument("--raters", action="append", metavar="ID[,ID...]", help="allowed rater ids (default: anyone with the code)")
    create.add_argument("--no-alignment", action="store_true", help="do not ask how well images match their prompt")
    create.add_argument("--image-size", type=int, default=256, help="every image is shown square at this size (32–1024)")
    create.add_argument("--keep-real-resolution", action="store_true", help="do not pass real images through the synthetic resolution first")
    create.add_argument("--pack", default=None, help="model pack (default: $MEDSYNTH_PACK or mini)")
    create.add_argument("--data", type=Path, default=None, help="real-data folder (default: $MEDSYNTH_DATA or ../shared/data)")
    part("list", "list studies with their counts of items, raters and ratings", cmd_study_list)
    close = part("close", "close a study: no more sign-ins or ratings", cmd_study_close)
    close.add_argument("code", help="study code")
    export = part("export", "write ratings and the study manifest as CSV and Parquet", cmd_study_export)
    export.add_argument("code", help="study code")
    export.add_argument("--out", type=Path, required=True, help="output folder")
    export.add_argument("--pseudonymise", action="store_true", help="replace rater ids by stable pseudonyms")
    export.add_argument("--images", action="store_true", help="also copy the study images")
    stats = part("stats", "print scores with 95% intervals, real-vs-synthetic accuracy and inter-rater agreement", cmd_study_stats)
    stats.add_argument("code", help="study code")


# ---- end reader studies


# ------------------------------------------------------------------- parser


def build_parser() -> Parser:
    parser = Parser(
        prog="medsynth",
        description="Synthetic medical images for education and research (never for diagnosis).",
    )
    parser.add_argument("--registry", type=Path, default=None, help="registry TOML (default: $MEDSYNTH_REGISTRY or assets/registry.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress of model loading")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

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
    generate.add_argument("--prompt", default=None, help="free-text findings; extends the class prompt when --label is given")
    generate.add_argument("--attr", type=_attribute, action="append", metavar="NAME=VALUE", help="optional attribute, e.g. site=back (repeatable)")
    generate.add_argument("--n", type=int, default=4, help="number of images (1–64)")
    generate.add_argument("--seed", type=int, default=None, help="first seed; image i uses seed+i (default: random, printed)")
    generate.add_argument("--steps", type=int, default=None, help="denoising steps (1–150; default: the pack's)")
    generate.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (0–30)")
    generate.add_argument("--validate", action="store_true", help="regenerate images the classifier rejects")
    generate.add_argument("--max-rounds", type=int, default=3, help="validation rounds at most (1–10)")
    generate.add_argument("--threshold", type=float, default=0.5, help="classifier confidence needed to accept (0–1)")
    generate.add_argument("--keep-rejected", action="store_true", help="also write images the validation rejected")
    generate.add_argument("--no-adapter", action="store_true", help="use the bare shared base (no domain LoRA)")
    generate.add_argument("--pack", default=None, help="model pack (default: $MEDSYNTH_PACK or mini)")
    generate.add_argument("--out", type=Path, required=True, help="output folder")
    generate.add_argument("--quiet", action="store_true", help="no progress bar")
    generate.set_defaults(func=cmd_generate)

    train = commands.add_parser(
        "train",
        help="train one component of the embedded pack (resumable; checkpoints under runs/)",
        description="Train one component. Runs resume from their checkpoint; options override the config defaults.",
    )
    parts = train.add_subparsers(dest="component", metavar="COMPONENT", parser_class=Parser, required=True)
    for component, target in TRAINABLE.items():
        _add_config_command(parts, component, target)
    _add_config_command(commands, "train-lora", TRAINABLE["lora"])  # the name the SD 1.5 docs use
    _add_export_command(commands)
    _add_evaluate_command(commands)
    _add_config_command(commands, "evaluate-pack", EVALUATE_PACK)
    _add_config_command(commands, "evaluate-autoencoder", EVALUATE_AUTOENCODER)
    _add_config_command(commands, "augment-experiment", AUGMENT_EXPERIMENT)
    _add_study_commands(commands)  # ---- reader studies
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        return args.func(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return EXIT_OK
    except Exception as error:  # registry problems and the like: one readable line, not a traceback
        from .registry import RegistryError

        if isinstance(error, RegistryError):
            print(f"error: {error}", file=sys.stderr)
            return EXIT_FAILURE
        raise
