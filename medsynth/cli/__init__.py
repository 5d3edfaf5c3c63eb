"""`python -m medsynth` (or `medsynth`): the command line, an edge of the package that nothing imports.

One module per command group (generate, train, research, study); they register here. Building the
parser imports no torch, diffusers or open_clip: each command imports what it needs when it runs.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from medsynth.cli import generate, research, study, train
from medsynth.cli.parsing import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CommandFailure, Parser, UsageError
from medsynth.paths import REGISTRY_ENV


def build_parser() -> Parser:
    parser = Parser(
        prog="medsynth",
        description="Synthetic medical images for education and research (never for diagnosis).",
    )
    parser.add_argument(
        "--registry", type=Path, default=None,
        help="registry TOML for every command (default: $MEDSYNTH_REGISTRY or assets/registry.toml)",
    )  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress of model loading")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    generate.add_commands(commands)
    train.add_commands(commands)
    research.add_commands(commands)
    study.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
        )
        if args.registry is not None:  # every registry load (engine, training, evaluation) reads it from here
            if not args.registry.is_file():
                raise UsageError(f"--registry {args.registry}: no such file")
            os.environ[REGISTRY_ENV] = str(args.registry.resolve())
        return args.func(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except CommandFailure as error:
        print(f"medsynth: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return EXIT_OK
    except Exception as error:  # registry problems and the like: one readable line, not a traceback
        from medsynth.registry import RegistryError

        if isinstance(error, RegistryError):
            print(f"error: {error}", file=sys.stderr)
            return EXIT_FAILURE
        raise
