"""What every command shares: one-line errors with exit codes, and flags built from config dataclasses."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path

from medsynth.configs import REPEAT, help_text, option_flag

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class CommandFailure(Exception):
    """The command could not do its work (a missing model, a bad input file): one line, exit code 1."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str) -> typing.NoReturn:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def parse_yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "yes", "true", "on"):
        return True
    if value in ("0", "no", "false", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


def _converter(hint: typing.Any, name: str) -> typing.Callable[[str], typing.Any]:
    """How a flag's text becomes a field's value; a type the command line cannot express is an error."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] in (int, float, str, Path):
        inner = args[0]
        return lambda text: tuple(inner(part) for part in text.split(",") if part)
    if hint is bool:
        return parse_yes_no
    if hint in (int, float, str):
        return hint
    if hint in (Path, Path | None):
        return Path
    raise TypeError(f"config field {name!r} has type {hint!r}, which no command-line flag can express")


def add_config_options(
    parser: argparse.ArgumentParser, config_cls: type, positional: tuple[str, ...] = ()
) -> list[str]:
    """One flag per field of a config dataclass, with the field's help text; tuples are comma-separated (or one flag
    per value where the field says repeat), booleans take yes/no, fields without a default are required; fields named
    in `positional` are arguments in that order."""
    hints = typing.get_type_hints(config_cls)
    names = []
    for item in dataclasses.fields(config_cls):
        if item.name in positional:
            parser.add_argument(item.name, help=help_text(item).replace("%", "%%"))
            names.append(item.name)
            continue
        if item.metadata.get(REPEAT):
            flag, text = option_flag(item.name), help_text(item).replace("%", "%%")
            parser.add_argument(flag, dest=item.name, action="append", default=None, help=f"{text} (repeatable)")
            names.append(item.name)
            continue
        text = help_text(item)
        if not text:
            raise TypeError(
                f"{config_cls.__name__}.{item.name} has no help text: declare it with medsynth.configs.option"
            )
        convert = _converter(hints[item.name], f"{config_cls.__name__}.{item.name}")
        required = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        if item.default is not dataclasses.MISSING and "default:" not in text:  # unless the help says it itself
            text = f"{text} (default: {_shown(item.default)})"
        parser.add_argument(
            option_flag(item.name),
            dest=item.name,
            type=convert,
            default=None,
            required=required,
            help=text.replace("%", "%%"),
        )
        names.append(item.name)
    return names


def _shown(value: typing.Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None or value == "" else str(value)


def attribute(text: str) -> tuple[str, str]:
    """NAME=VALUE of `generate --attr`."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"attribute must look like name=value, got {text!r}")
    name, value = text.split("=", 1)
    return name.strip(), value.strip()


@dataclasses.dataclass(frozen=True)
class ConfigCommand:
    """A command whose options are the fields of a config dataclass: where the config lives (a torch-free
    module, so the parser builds fast) and the function that takes it (imported only when the command runs)."""

    config: str  # "module:Class"
    function: str  # "module:function"

    def config_class(self) -> type:
        return _resolve(self.config)


def _resolve(target: str) -> typing.Any:
    import importlib

    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def add_config_command(subparsers, name: str, command: ConfigCommand, positional: tuple[str, ...] = ()) -> None:
    config_cls = command.config_class()
    summary = (config_cls.__doc__ or name).strip().splitlines()[0]
    part = subparsers.add_parser(name, help=summary.replace("%", "%%"), description=summary)
    fields = add_config_options(part, config_cls, positional)
    part.set_defaults(func=run_config_command, command=command, config_fields=fields)


def run_config_command(args: argparse.Namespace) -> int:
    """Build the config from the flags given, run the command's function; bad names or inputs are one line."""
    from medsynth.generation.pipeline import quiet_libraries
    from medsynth.registry import UnknownNameError

    config = args.command.config_class()(
        **{
            k: tuple(v) if isinstance(v, list) else v
            for k, v in vars(args).items()
            if k in args.config_fields and v is not None
        }  # fmt: skip
    )
    quiet_libraries()
    function = _resolve(args.command.function)
    try:
        result = function(config, args.registry)
    except (UnknownNameError, ValueError, FileNotFoundError) as error:
        raise CommandFailure(str(error)) from None
    print(f"done, wrote {result}")
    return EXIT_OK
