"""evaluate-pack's results as typed records: what the report, the model card and `domain add`'s summary read.

`results.json` keeps the JSON the command has always written (runs of separate domains merge into it); this module is
the one place it is read back, older files included: a field an older run did not record comes back as None, an
empty mapping or the older field it replaced, never as a KeyError in a report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

MODES = {"base": "bare shared base", "lora": "base + domain LoRA", "validated": "base + LoRA + validation loop"}


@dataclass(frozen=True)
class ClassificationScores:
    """A classifier's or evaluator's scores on real images."""

    accuracy: float | None  # None: not measured (the evaluator on real images, in the oldest results)
    balanced_accuracy: float | None = None
    macro_f1: float | None = None
    per_class_recall: Mapping[str, float] = field(default_factory=dict)  # empty in results from before it was kept

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "ClassificationScores":
        return cls(
            raw.get("accuracy"),
            raw.get("balanced_accuracy"),
            raw.get("macro_f1"),
            dict(raw.get("per_class_recall", {})),
        )


@dataclass(frozen=True)
class GeneratedSet:
    """One generator's images of a domain (mode base, lora or validated) as the evaluators and features saw them."""

    n_images: int
    evaluator_macro_f1: float
    frechet_distance: float
    evaluator_macro_f1_panel: tuple[float, ...] = ()  # every evaluator of the panel (older reports: none)
    evaluator_per_class_recall: Mapping[str, float] = field(default_factory=dict)
    images_per_class: Mapping[str, int] | None = None  # what the validation loop kept (None: not counted)
    generated: int | None = None  # images generated, rejected ones included
    classifier_agreement: float | None = None
    kid: float | None = None
    clip_score: float | None = None
    memorisation_median: float | None = None
    memorisation_max: float | None = None
    foreign_domain_share: float | None = None
    seconds: float | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "GeneratedSet":
        names = cls.__dataclass_fields__
        values = {k: v for k, v in raw.items() if k in names}
        values["evaluator_macro_f1_panel"] = tuple(raw.get("evaluator_macro_f1_panel") or ())
        values.setdefault("n_images", 0)
        values.setdefault("frechet_distance", float("nan"))
        return cls(**values)

    @property
    def panel_f1(self) -> list[float]:
        """Macro-F1 under every evaluator of the panel (the primary alone in older reports)."""
        return list(self.evaluator_macro_f1_panel) or [self.evaluator_macro_f1]

    @property
    def panel_mean(self) -> float:
        return float(np.mean(self.panel_f1))


@dataclass(frozen=True)
class EvaluatorSetScores:
    """One evaluator set's panel on a domain: its F1 on real images and on each generator's."""

    degrade: float
    seeds: tuple[int, ...]
    real_macro_f1: tuple[float, ...]
    by_mode: Mapping[str, tuple[float, ...]]
    weights: tuple[str, ...] | None = None  # fingerprints of the evaluator weights (None: not recorded)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "EvaluatorSetScores":
        return cls(
            raw.get("degrade", 0.0),
            tuple(raw.get("seeds", ())),
            tuple(raw["real_macro_f1"]),
            {mode: tuple(raw[mode]) for mode in MODES if mode in raw},
            tuple(raw["weights"]) if raw.get("weights") else None,
        )


@dataclass(frozen=True)
class DomainEvaluation:
    """Everything evaluate-pack measured for one domain."""

    name: str
    classes: tuple[str, ...]
    classifier_real: ClassificationScores
    evaluator_real: ClassificationScores
    clip_zero_shot_accuracy: float
    frechet_floor: float  # real train ↔ real split at the generated sets' size and class mix
    modes: Mapping[str, GeneratedSet]
    guidance: float | None = None
    base_unconditional: bool = False
    evaluator_degrade: float | None = None
    evaluator_panel_seeds: tuple[int, ...] = ()
    evaluator_sets: Mapping[str, EvaluatorSetScores] = field(default_factory=dict)
    autoencoder_ceiling: Mapping[str, float] | None = None
    classifier_by_source: tuple[Mapping[str, Any], ...] = ()
    probe_accuracy: float | None = None
    probe_accuracy_share: float | None = None
    accuracy_bar: float | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)  # as stored, for fields no report reads

    @classmethod
    def from_json(cls, name: str, raw: Mapping[str, Any]) -> "DomainEvaluation":
        return cls(
            name=name,
            classes=tuple(raw.get("classes", ())),
            classifier_real=ClassificationScores.from_json(raw["classifier_real_test"]),
            evaluator_real=ClassificationScores.from_json(raw.get("evaluator_real_test", {})),
            clip_zero_shot_accuracy=raw["clip_zero_shot_accuracy"],
            frechet_floor=raw["frechet_floor_train_vs_test"],
            modes={mode: GeneratedSet.from_json(raw[mode]) for mode in MODES if mode in raw},
            guidance=raw.get("guidance"),  # not recorded before per-domain guidance
            base_unconditional=bool(raw.get("base_unconditional")),
            evaluator_degrade=raw.get("evaluator_degrade"),
            evaluator_panel_seeds=tuple(raw.get("evaluator_panel_seeds", ())),
            evaluator_sets={k: EvaluatorSetScores.from_json(v) for k, v in (raw.get("evaluator_sets") or {}).items()},
            autoencoder_ceiling=raw.get("autoencoder_ceiling"),
            classifier_by_source=tuple(raw.get("classifier_by_source") or ()),
            probe_accuracy=raw.get("probe_accuracy"),
            probe_accuracy_share=raw.get("probe_accuracy_share"),
            accuracy_bar=raw.get("accuracy_bar"),
            raw=raw,
        )

    def mode(self, name: str) -> GeneratedSet | None:
        return self.modes.get(name)


@dataclass(frozen=True)
class PackEvaluation:
    """A results.json: the pack, the settings every domain was measured with, and each domain's evaluation."""

    pack: str
    settings: Mapping[str, str]  # the command's options as its command line writes them
    domains: Mapping[str, DomainEvaluation]
    pack_settings: Mapping[str, Any] | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "PackEvaluation":
        domains = {name: DomainEvaluation.from_json(name, r) for name, r in raw.get("domains", {}).items()}
        return cls(raw.get("pack", "?"), dict(raw.get("config", {})), domains, raw.get("pack_settings"))

    @classmethod
    def load(cls, path: str | Path) -> "PackEvaluation":
        return cls.from_json(json.loads(Path(path).read_text()))

    @property
    def split(self) -> str:
        return self.settings.get("split", "test")
