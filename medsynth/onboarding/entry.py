"""A domain's tables in the user registry layer: written as TOML text, checked by loading before they replace the file.

The shipped `assets/registry.toml` and its comments are never touched; the user layer (runs/registry.toml unless told
otherwise) holds what `domain add` wrote, one commented block per domain, which the user may edit afterwards. The
registry module writes and checks the layer; this one only says what goes in.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medsynth.registry import ClassInfo, Registry, write_user_tables

ADDING = "being added: run the same `medsynth domain add` again to finish"  # sources.unavailable until the end


def toml_value(value: Any) -> str:
    """A value as TOML: strings as basic strings (JSON's escapes are TOML's), lists and inline tables of those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else json.dumps(key)


def relative(path: Path, start: Path) -> str:
    """A path as the layer stores it: relative to the layer's folder where it can be, so the runs folder can move."""
    try:
        return os.path.relpath(path.resolve(), start.resolve())
    except ValueError:  # another drive
        return str(path.resolve())


@dataclass(frozen=True)
class DomainEntry:
    """What `domain add` registers for one domain. `shipped` marks a domain the shipped registry defines (pathology
    from PathMNIST): the layer then gives only its image folder and sources."""

    name: str
    pack: str
    data_folder: Path
    display_name: str = ""
    modality: str = ""
    grey: bool = False
    mirror: bool = False
    classes: tuple[ClassInfo, ...] = ()
    attributes: dict[str, tuple] = field(default_factory=dict)  # column → choices, or (min, max) of whole numbers
    data_description: str = ""
    sources: dict[str, Any] = field(default_factory=lambda: {"unavailable": ADDING})
    shipped: bool = False
    origin: str = ""  # the command's input, for the comment over the block

    def tables(self, layer_folder: Path) -> str:
        """The TOML block of this domain, paths relative to the layer's folder."""
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        # the comment goes under the header, so that replacing or removing the tables takes it along
        lines = [f"[domains.{self.name}]", f"# `medsynth domain add` {stamp} from {self.origin}; edit the descriptions"]
        folder = relative(self.data_folder, layer_folder)
        if self.shipped:
            lines.append(f"data = {toml_value({'folder': folder})}")
        else:
            lines += [
                f"display_name = {toml_value(self.display_name or self.name.replace('_', ' ').capitalize())}",
                f"modality = {toml_value(self.modality)}",
                f"grey = {toml_value(self.grey)}",
                f"mirror = {toml_value(self.mirror)}",
                f"data = {toml_value({'description': self.data_description, 'licence': 'as supplied', 'folder': folder})}",
                "prompt_templates = "
                + toml_value(
                    [
                        f"{self.modality} showing {{class_name}}{{attributes}}",
                        f"{self.modality} of {{class_name}}{{attributes}}",
                    ]
                ),  # fmt: skip
                "classes = [",
                *(f"  {toml_value(self._class_table(c))}," for c in self.classes),
                "]",
            ]
            if self.attributes:
                lines += ["attributes = [", *(f"  {toml_value(a)}," for a in self._attribute_tables()), "]"]
                lines.append(f"captions = {toml_value({'attributes': {c: c for c in self.attributes}})}")
        lines.append("")
        lines.append(f"[domains.{self.name}.sources.{self.pack}]")
        for key, value in self.sources.items():
            shown = relative(value, layer_folder) if isinstance(value, Path) else value
            lines.append(f"{key} = {toml_value(shown)}")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _class_table(info: ClassInfo) -> dict:
        table = {"code": info.code, "name": info.name, "description": info.description}
        return {**table, "rare": True} if info.rare else table

    def _attribute_tables(self) -> list[dict]:
        tables = []
        for column, values in self.attributes.items():
            words = column.replace("_", " ")
            table = {"name": column, "label": words.capitalize(), "phrase": f"{words} {{value}}"}
            if values and isinstance(values[0], int):
                table |= {"min": values[0], "max": values[1]}
            else:
                table |= {"choices": list(values)}
            tables.append(table)
        return tables


def write_entry(registry: Registry, entry: DomainEntry, keep: bool = True) -> Registry:
    """The registry with the entry in its user layer (see `write_user_tables`; keep=False: in memory only)."""
    return write_user_tables(registry, entry.name, entry.tables(registry.user_path.parent), keep)
