"""Configuration dataclasses and their command lines: one rule for the flags the CLI parses and for the
commands that reports and the model card print.

Every field of a config that a command exposes is declared with `option(default, help=...)`, so its
help text travels with it (the CLI shows it, and refuses a field without it).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

HELP = "help"
REPEAT = "repeat"  # a flag given once per value (values that may hold commas)


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    factory: Callable[[], Any] | None = None,
    repeat: bool = False,
) -> Any:
    """A dataclass field with the help text of its command-line flag (`factory` for computed defaults; `repeat`: a
    tuple of strings given as one flag per value rather than comma-separated)."""
    metadata = {HELP: help, REPEAT: repeat}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def help_text(item: dataclasses.Field) -> str:
    return str(item.metadata.get(HELP, "")).strip()


def option_flag(field_name: str) -> str:
    """The command-line flag of a config field."""
    return "--" + field_name.replace("_", "-")


def option_value(value: Any) -> str:
    """A config value as its flag takes it: yes/no, sequences comma-separated (also as a JSON record stores them)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def command_line(command: str, options: dict) -> str:
    """`command` followed by `--flag value` per option: how reports and the model card say what to run."""
    return command + "".join(f" {option_flag(name)} {option_value(value)}" for name, value in options.items())


def changed_options(values: dict, defaults: dict, keys) -> dict[str, str]:
    """The options among `keys` whose value differs from the default, written as the command line takes them."""
    return {
        k: option_value(values[k])
        for k in keys
        if k in values and k in defaults and option_value(values[k]) != option_value(defaults[k])
    }


def defaults_of(config_cls: type) -> dict[str, Any]:
    """A config class's default values by field (fields without a default are left out)."""
    values = {}
    for item in dataclasses.fields(config_cls):
        if item.default is not dataclasses.MISSING:
            values[item.name] = item.default
        elif item.default_factory is not dataclasses.MISSING:
            values[item.name] = item.default_factory()
    return values
