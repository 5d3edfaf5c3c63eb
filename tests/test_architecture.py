"""The package's layers: every import points down the flow of ../shared/DESIGN.md, and nothing imports the CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from medsynth.paths import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "medsynth"

# lower numbers sit lower; a module may import its own part or parts of a lower layer, never a sibling or above
LAYERS = {
    "paths": 0, "configs": 0, "precision": 0, "imaging": 0,
    "registry": 1,
    "data": 2,
    "models": 3,
    "generation": 4,
    "training": 5, "research": 5, "studies": 5,
    "pack": 6, "onboarding": 6,
    "ui": 7, "cli": 7,
}  # fmt: skip


def part_of(module: str) -> str:
    """medsynth.generation.engine → generation; medsynth.paths → paths; medsynth → ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path: Path) -> str:
    relative = path.relative_to(PROJECT_ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every medsynth module a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "medsynth" or name.startswith(("medsynth.", "tests"))}


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in graph.items():
        source = part_of(module)
        for target in targets:
            if target.startswith("tests"):
                problems.append(f"{module} imports the test support {target}")
                continue
            goal = part_of(target)
            if goal in ("", source) or module == "medsynth.__main__":
                continue
            if goal == "cli":
                problems.append(f"{module} imports the CLI ({target}): the CLI is an edge")
            elif source not in LAYERS or goal not in LAYERS:
                problems.append(f"{module} → {target}: {source or goal} has no layer in this test")
            elif LAYERS[goal] >= LAYERS[source]:
                problems.append(f"{module} (layer {LAYERS[source]}) imports {target} (layer {LAYERS[goal]})")
    return sorted(problems)


def test_every_part_of_the_package_has_a_layer():
    parts = {part_of(m) for m in import_graph()} - {"", "__main__"}
    assert parts <= set(LAYERS), f"new parts without a layer: {sorted(parts - set(LAYERS))}"


def test_imports_point_down_the_flow():
    assert violations(import_graph()) == []


def test_the_check_catches_an_upward_and_a_sideways_import():
    graph = {
        "medsynth.generation.engine": {"medsynth.research.measures"},  # generation importing research: upward
        "medsynth.research.augment_experiment": {
            "medsynth.training.classifier"
        },  # research importing training: sideways
        "medsynth.pack.model_card": {"medsynth.cli.parsing"},
        "medsynth.training.base": {"medsynth.data.cache", "medsynth.training.runs"},  # fine
    }
    found = violations(graph)
    assert len(found) == 3 and any("CLI" in p for p in found)


@pytest.mark.parametrize("command", [["--help"], ["study", "list", "--help"], ["train", "autoencoder", "--help"]])
def test_the_parser_builds_without_torch_diffusers_or_open_clip(command):
    code = (
        "import sys; from medsynth.cli import build_parser; parser = build_parser()\n"
        f"try:\n    parser.parse_args({command!r})\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'diffusers', 'open_clip', 'transformers', 'gradio') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr[-1500:]
