"""`medsynth study create|list|close|export|stats`: blinded reader studies from the command line."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from medsynth.cli.generate import load_engine
from medsynth.cli.parsing import EXIT_OK, Parser, UsageError


def _study_store(args: argparse.Namespace):
    from medsynth.studies import StudyError, StudyStore, default_db_path

    path = args.db or default_db_path()
    if args.study_command != "create" and not Path(path).is_file():
        raise UsageError(f"study {args.study_command}: no study database at {path} (give --db or create a study first)")
    try:
        return StudyStore(path)
    except StudyError as error:
        raise UsageError(f"study: {error}") from None


def _study_errors(function):
    """Study errors (unknown code, bad design, ...) are usage errors: one line, exit code 2."""

    @functools.wraps(function)
    def wrapper(args: argparse.Namespace) -> int:
        from medsynth.studies import StudyError

        try:
            return function(args)
        except StudyError as error:
            raise UsageError(f"study {args.study_command}: {error}") from None

    return wrapper


@_study_errors
def cmd_study_create(args: argparse.Namespace) -> int:
    from medsynth.registry import selected_pack_name
    from medsynth.studies import StudySpec
    from medsynth.studies.build import build_study, draw_real, resolve_cells

    registry = args.registry
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
        crop_markers=args.crop,
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
        engine = load_engine(registry, pack)
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
        print(
            f"{s.code}  {s.status:<6}  items {s.items:>4}  raters {s.raters:>3}  ratings {s.ratings:>5}  {s.created}  {s.title}"
        )
    return EXIT_OK


@_study_errors
def cmd_study_close(args: argparse.Namespace) -> int:
    study = _study_store(args).close_study(args.code)
    print(f"study {study.code} closed at {study.closed}")
    return EXIT_OK


@_study_errors
def cmd_study_export(args: argparse.Namespace) -> int:
    from medsynth.studies.ratings_export import export_study

    result = export_study(_study_store(args), args.code, args.out, pseudonymise=args.pseudonymise, images=args.images)
    print(
        f"wrote {result.ratings} rating(s) and {result.items} item(s) to {result.folder}: "
        + ", ".join(p.name for p in result.files[:4])
    )
    return EXIT_OK


@_study_errors
def cmd_study_invite(args: argparse.Namespace) -> int:
    from urllib.parse import urlencode

    store = _study_store(args)
    keys = store.issue_keys(args.code, [r for part in args.raters or [] for r in part.split(",") if r])
    study = store.get_study(args.code)
    print(f"keys for study {study.code} (shown once; the database keeps only their hashes):")
    for rater, key in keys.items():
        link = f"{args.url.rstrip('/')}/?{urlencode({'study': study.code, 'rater': rater, 'key': key})}"
        print(f"{rater}\t{key}\t{link}")
    return EXIT_OK


@_study_errors
def cmd_study_stats(args: argparse.Namespace) -> int:
    from medsynth.studies.stats import analyse

    store = _study_store(args)
    study = store.get_study(args.code)
    print(f"study {study.code} — {study.title} ({study.status})")
    print(analyse(store.ratings(study.code)).text())
    return EXIT_OK


def add_commands(commands) -> None:
    study = commands.add_parser(
        "study",
        help="expert reader studies: create, list, invite, close, export, stats",
        description="Blinded reader studies (realism, prompt alignment, real or synthetic). "
        "The database is --db, $MEDSYNTH_STUDIES_DB or runs/studies/studies.db.",
    )
    parts = study.add_subparsers(dest="study_command", metavar="ACTION", parser_class=Parser, required=True)

    def part(name: str, help_text: str, func) -> argparse.ArgumentParser:
        parser = parts.add_parser(name, help=help_text.replace("%", "%%"), description=help_text)
        parser.add_argument(
            "--db",
            type=Path,
            default=None,
            help="study database (default: $MEDSYNTH_STUDIES_DB or runs/studies/studies.db)",
        )
        parser.set_defaults(func=func)
        return parser

    create = part(
        "create", "generate and draw the images once, freeze them, open a study; prints its code", cmd_study_create
    )
    create.add_argument("--domains", nargs="+", required=True, metavar="DOMAIN", help="domains, see `medsynth domains`")
    create.add_argument(
        "--classes", nargs="+", metavar="CLASS", help="class codes, or domain/code (default: every class)"
    )
    create.add_argument("--synthetic", type=int, required=True, metavar="N", help="synthetic images per class (0–500)")
    create.add_argument(
        "--real", type=int, required=True, metavar="N", help="real images per class (0–500), test split first"
    )
    create.add_argument(
        "--seed", type=int, required=True, help="draws the real images, the generation seeds and each rater's order"
    )
    create.add_argument("--title", default="Reader study", help="title shown to the admin")
    create.add_argument(
        "--raters", action="append", metavar="ID[,ID...]", help="allowed rater ids (default: anyone with the code)"
    )
    create.add_argument("--no-alignment", action="store_true", help="do not ask how well images match their prompt")
    create.add_argument(
        "--image-size", type=int, default=256, help="every image is shown square at this size (32–1024)"
    )
    create.add_argument(
        "--keep-real-resolution",
        action="store_true",
        help="do not pass real images through the synthetic resolution first",
    )
    create.add_argument(
        "--crop", action="store_true",
        help="crop the registry's margin (burned-in markers and text) off every image of the domains that name one",
    )  # fmt: skip
    create.add_argument("--pack", default=None, help="model pack (default: $MEDSYNTH_PACK or mini)")
    create.add_argument(
        "--data", type=Path, default=None, help="real-data folder (default: $MEDSYNTH_DATA or ../shared/data)"
    )
    part("list", "list studies with their counts of items, raters and ratings", cmd_study_list)
    close = part("close", "close a study: no more sign-ins or ratings", cmd_study_close)
    close.add_argument("code", help="study code")
    export = part("export", "write ratings and the study manifest as CSV and Parquet", cmd_study_export)
    export.add_argument("code", help="study code")
    export.add_argument("--out", type=Path, required=True, help="output folder")
    export.add_argument("--pseudonymise", action="store_true", help="replace rater ids by stable pseudonyms")
    export.add_argument("--images", action="store_true", help="also copy the study images")
    invite = part(
        "invite",
        "issue each named rater (or the ids given) a fresh key; prints rater, key and sign-in link",
        cmd_study_invite,
    )
    invite.add_argument("code", help="study code")
    invite.add_argument(
        "--raters", action="append", metavar="ID[,ID...]", help="rater ids (default: every named rater of the study)"
    )
    invite.add_argument("--url", default="http://127.0.0.1:7860", help="the app's address, for the sign-in links")
    stats = part(
        "stats",
        "print scores with 95% intervals, real-vs-synthetic accuracy and inter-rater agreement",
        cmd_study_stats,
    )
    stats.add_argument("code", help="study code")
