"""The independent evaluators as scorers: the primary one, or the whole panel of seeds."""

from __future__ import annotations

from pathlib import Path

from medsynth.generation.scoring import ClassifierScorer
from medsynth.models.evaluator import panel_folders
from medsynth.registry import Source


def _scorer(folder: Path) -> ClassifierScorer:
    return ClassifierScorer.from_source(Source(spec=str(folder), path=folder))


def load_evaluator(domain: str, root: Path | None = None) -> ClassifierScorer:
    """The domain's primary evaluator in a set (default: runs/evaluators); a missing one names the command that trains it."""
    return _scorer(next(iter(panel_folders(domain, root).values())))


def load_evaluator_panel(domain: str, root: Path | None = None) -> dict[int, ClassifierScorer]:
    """Every evaluator of the domain in a set by seed, the primary first."""
    return {seed: _scorer(folder) for seed, folder in panel_folders(domain, root).items()}
