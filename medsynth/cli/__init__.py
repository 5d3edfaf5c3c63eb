"""`python -m medsynth` (or `medsynth`): the command line, an edge of the package that nothing imports.

One module per command group (generate, train, research, study); they register here. Building the
parser imports no torch, diffusers or open_clip: each command imports what it needs when it runs.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Sequence

from medsynth.cli import counterfactual, domain, generate, research, study, train
from medsynth.cli.parsing import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CommandFailure, Parser, UsageError


def build_parser() -> Parser:
    parser = Parser(
        prog="medsynth",
        description="Synthetic medical images for education and research (never for diagnosis).",
    )
    parser.add_argument(
        "--registry", type=Path, default=None, dest="registry_file",
        help="registry TOML for every command (default: $MEDSYNTH_REGISTRY or assets/registry.toml)",
    )  # fmt: skip
    parser.add_argument(
        "--user-registry", type=Path, default=None, dest="user_registry_file",
        help="the user layer over it, where `domain add` writes (default: $MEDSYNTH_USER_REGISTRY or runs/registry.toml)",
    )  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress of model loading")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    generate.add_commands(commands)
    counterfactual.add_commands(commands)
    domain.add_commands(commands)
    train.add_commands(commands)
    research.add_commands(commands)
    study.add_commands(commands)
    return parser


def load_edge_registry(args):
    """The registry every command works with, loaded once here (shipped file and user layer) and passed down."""
    from medsynth.paths import user_registry_path
    from medsynth.registry import load_registry

    if args.registry_file is not None and not args.registry_file.is_file():
        raise UsageError(f"--registry {args.registry_file}: no such file")
    if getattr(args, "tolerates_broken_registry", False):
        return None  # `domain check` loads it itself, to report every problem rather than stop at the first
    return load_registry(args.registry_file, user=args.user_registry_file or user_registry_path())


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
        args.registry = load_edge_registry(args)
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
