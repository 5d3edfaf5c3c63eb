"""`medsynth domain add`: the stages from labelled images to a served, evaluated domain, each one recorded when done.

A second run with the same name continues after the last finished stage (the training stages also resume inside
from their own checkpoints). Until the last stage the user layer marks the domain unavailable ("being added"), so an
app started meanwhile lists it with that reason instead of serving half-trained models; the stages that generate
images measure it through a registry object that already holds its sources.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from medsynth.onboarding.config import DomainAddConfig
from medsynth.onboarding.entry import ADDING, DomainEntry, write_entry
from medsynth.onboarding.intake import (
    DataProblem,
    Labelled,
    assign_splits,
    check_classes,
    check_name,
    check_splits,
    class_code,
    medmnist_file,
    read_labelled,
    read_medmnist,
    write_domain_folder,
)
from medsynth.paths import data_root, runs_dir, user_registry_path
from medsynth.registry import ClassInfo, Registry, selected_pack_name

PROGRESS_NAME = "progress.json"
# what a change of makes the earlier stages stale: the data and how they are read
DATA_OPTIONS = ("images", "from_medmnist", "classes", "label_column", "file_column", "group_column", "split_seed",
                "min_per_class", "grey")  # fmt: skip


@dataclass(frozen=True)
class Stage:
    name: str
    what: str  # one line for the progress header
    run: Callable[["DomainAdd"], dict]


class DomainAdd:
    """One `domain add` run: its config, the registry it grows and the run folder where its progress is kept."""

    def __init__(self, config: DomainAddConfig, registry: Registry) -> None:
        self.config = config
        self.name = check_name(config.name.strip())
        self.user_path = Path(registry.user_path or user_registry_path())
        self.registry = replace(registry, user_path=self.user_path)
        self.pack = registry.get_pack(config.pack or selected_pack_name())
        self.out = Path(config.out or runs_dir() / "domains" / self.name).resolve()  # sources are stored from it
        self.progress_path = self.out / PROGRESS_NAME
        self.progress = self._progress()
        self.shipped = self.name in registry.domains and self.name not in registry.user_domains()
        self._check_name_is_free()

    # ------------------------------------------------------------------ bookkeeping
    def _progress(self) -> dict:
        settings = {k: str(v) for k, v in asdict(self.config).items()}
        if not self.progress_path.is_file():
            return {"config": settings, "done": {}}
        earlier = json.loads(self.progress_path.read_text())
        changed = [k for k in DATA_OPTIONS if earlier["config"].get(k) != settings[k]]
        if changed:
            raise DataProblem(
                f"{self.out} holds an earlier `domain add {self.name}` from other data ({', '.join(changed)} differ): "
                f"finish it with the same options, or `medsynth domain remove {self.name}` and delete {self.out}"
            )
        return {**earlier, "config": settings}

    def _check_name_is_free(self) -> None:
        if self.progress["done"]:
            return  # our own interrupted run: continue it
        if self.name in self.registry.user_domains():
            raise DataProblem(f"domain {self.name} already exists in {self.user_path}; choose another name, or "
                              f"`medsynth domain remove {self.name}` first")  # fmt: skip
        if self.shipped:
            sources = self.registry.get_domain(self.name).sources_for(self.pack.name)
            if not (self.config.from_medmnist and sources.unavailable):
                raise DataProblem(
                    f"domain {self.name} already exists in {self.registry.path}; choose another name (only a shipped "
                    "domain without models may be filled, from its MedMNIST set)"
                )

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        staged = self.progress_path.with_suffix(".tmp")
        staged.write_text(json.dumps(self.progress, indent=2, default=str))
        staged.replace(self.progress_path)

    def result(self, stage: str) -> dict:
        return self.progress["done"][stage]

    # ------------------------------------------------------------------ the domain as registered
    @property
    def resolution(self) -> int:
        """The pack's image size in px, read from its base's configs (no model is loaded)."""
        base = self.pack.base.path
        if base is None:
            raise DataProblem(
                f"pack {self.pack.name}'s base is not a local folder: `domain add` trains on a local base"
            )
        unet = json.loads((base / "unet" / "config.json").read_text())
        vae = json.loads((base / "vae" / "config.json").read_text())
        return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)

    def entry(self, sources: dict | None = None) -> DomainEntry:
        data = self.result("data")
        shipped = self.registry.get_domain(self.name) if self.shipped else None
        descriptions = dict(text.split("=", 1) for text in self.config.describe)
        classes = tuple(
            ClassInfo(
                code,
                data["names"][code],
                descriptions.get(code, descriptions.get(data["names"][code], "")).strip()
                or f"{data['names'][code]} on {self.modality}: describe what a trainee should look for "
                f"(edit this in {self.user_path})",
                rare=data["counts"][code] < 0.5 * max(data["counts"].values()),
            )
            for code in data["codes"]
        )
        return DomainEntry(
            name=self.name,
            pack=self.pack.name,
            data_folder=self.out / "data",
            display_name=self.config.display_name,
            modality=shipped.modality if shipped else self.modality,
            grey=bool(data["grey"]),
            mirror=self.config.mirror,
            classes=classes,
            attributes={k: tuple(v) for k, v in data["attributes"].items()},
            data_description=data["origin"],
            sources=sources if sources is not None else {"unavailable": ADDING},
            shipped=self.shipped,
            origin=data["origin"],
        )

    @property
    def modality(self) -> str:
        return self.config.modality or self.progress["done"].get("data", {}).get("modality") or "medical image"

    def sources(self, guidance: float | None = None) -> dict:
        found = {
            "adapter": self.out / "adapter" / "adapter",
            "classifier": self.out / "classifier",
            "clip": self.out / "clip",
        }
        return found | ({"guidance": guidance} if guidance is not None else {})

    def measured_registry(self) -> Registry:
        """The registry with this domain's sources, the user layer on disk unchanged (see the module docstring)."""
        return write_entry(self.registry, self.entry(self.sources()), keep=False)

    # ------------------------------------------------------------------ running
    def run(self, stages: tuple[Stage, ...], say: Callable[[str], None] = print) -> dict:
        started = time.perf_counter()
        for number, stage in enumerate(stages, start=1):
            header = f"[{number}/{len(stages)}] {stage.name}: {stage.what}"
            if stage.name in self.progress["done"]:
                say(f"{header} — done earlier, kept")
                continue
            say(f"{header} — {estimate(self, stage.name)}")
            begun = time.perf_counter()
            outcome = stage.run(self)
            self.progress["done"][stage.name] = {**outcome, "seconds": round(time.perf_counter() - begun, 1)}
            self.save()
        self.progress["wall_time_s"] = round(time.perf_counter() - started, 1)
        self.save()
        return self.progress


# seconds on a 2-core AMD EPYC (Zen 3, AVX2, float32) at 128 px, measured by `domain add` on 978 dermatology images
# of 4 classes (runs/domains/derm4/progress.json, stop 41): per image of the domain (decoding, encoding latents with
# their mirror images), per adapter step of 16 latents, per training image and epoch, per generated image (20 steps,
# scored), and what a stage pays once (loading the pack, features of the other domains' images, the test set's).
COST_PER_IMAGE = {"data": 0.0076, "adapter": 0.23, "clip": 0.004}
COST_PER_STEP = 2.2  # adapter, rank 8, attention + ResNet layers
COST_PER_TRAIN_IMAGE_EPOCH = {"classifier": 0.031, "evaluator": 0.056}
COST_PER_GENERATED_IMAGE = 2.2
COST_ONCE = {"guidance": 21.0, "report": 125.0}
# with the defaults, 978 images: about 46 min (adapter 26, report 9, classifier 4, guidance 4, evaluator 3),
# extrapolated from these rates (the short run they come from took 11.5 min: 60 steps, 2 + 1 epochs, 40 images)


def stage_seconds(run: DomainAdd, stage: str) -> float | None:
    """The stage's expected time on the machine above, from its size (images, steps, epochs, generated images)."""
    config, data = run.config, run.progress["done"].get("data", {})
    images = data.get("n_images", 1000)
    train = sum(data.get("splits", {}).get("train", {}).values()) or 0.7 * images
    classes = len(data.get("codes", ())) or 4
    generated = {
        "guidance": classes * config.sweep_per_class * len(config.guidance),
        "report": classes * config.eval_per_class * 2,  # the bare base and the adapter
    }
    if stage in COST_PER_IMAGE:
        seconds = images * COST_PER_IMAGE[stage]
        if stage == "adapter":
            seconds += config.lora_steps * COST_PER_STEP * config.batch_size / 16
    elif stage in COST_PER_TRAIN_IMAGE_EPOCH:
        epochs = config.classifier_epochs if stage == "classifier" else config.evaluator_epochs
        seconds = train * epochs * COST_PER_TRAIN_IMAGE_EPOCH[stage]
    elif stage in generated:
        seconds = COST_ONCE[stage] + generated[stage] * COST_PER_GENERATED_IMAGE
    else:
        return None
    return seconds * ((run.resolution / 128) ** 2 if stage != "data" else 1.0)


def estimate(run: DomainAdd, stage: str) -> str:
    seconds = stage_seconds(run, stage)
    if seconds is None:
        return "seconds"
    return f"about {seconds / 60:.0f} min on 2 CPU cores" if seconds >= 90 else f"about {seconds:.0f} s"


# ---------------------------------------------------------------------- the stages


def stage_data(run: DomainAdd) -> dict:
    config = run.config
    if bool(config.images) == bool(config.from_medmnist):
        raise DataProblem("give the images with --images DIR_OR_CSV or --from-medmnist NAME (one of the two)")
    if config.from_medmnist:
        name = config.from_medmnist.strip().lower()
        labelled = read_medmnist(medmnist_file(name, data_root(), runs_dir() / "medmnist"), name)
        origin = f"MedMNIST {name}"
    else:
        labelled = read_labelled(Path(config.images), config)
        origin = str(config.images)
    labelled = named_classes(run, labelled)
    counts = check_classes(labelled.records, config.min_per_class)
    splits = assign_splits(labelled.records, config.split_seed)
    check_splits(labelled.records, splits)
    grey = config.grey or bool(labelled.grey)
    written = write_domain_folder(labelled, splits, run.out / "data", run.resolution, grey)
    codes = list(dict.fromkeys(r.label for r in labelled.records))
    codes = sorted(codes, key=lambda c: -counts[c]) if not run.shipped else codes
    return {
        "origin": origin,
        "n_images": len(labelled.records),
        "codes": codes,
        "names": {c: labelled.class_names.get(c, c.replace("_", " ")) for c in codes},
        "counts": {c: counts[c] for c in codes},
        "splits": written.counts,
        "grey": grey,
        "modality": labelled.modality,
        "attributes": {column: list(values) for column, values in written.attributes.items()},  # as JSON keeps them
    }


def named_classes(run: DomainAdd, labelled: Labelled) -> Labelled:
    """Labels as class codes; a shipped domain filled from its MedMNIST set takes its own codes, in the set's order."""
    records = labelled.records
    codes = list(dict.fromkeys(class_code(r.label) for r in records))
    clashes = len(codes) != len({r.label for r in records})
    if clashes:
        raise DataProblem("two labels give the same class code (letters and digits only, case folded): rename one")
    if not run.shipped:
        renamed = [replace(r, label=class_code(r.label)) for r in records]
        return replace(labelled, records=renamed)
    shipped = run.registry.get_domain(run.name)
    order = list(labelled.class_names)  # the set's label order
    if len(order) != len(shipped.classes):
        raise DataProblem(f"{run.name} has {len(shipped.classes)} classes, the MedMNIST set {len(order)}")
    mapping = {code: info.code for code, info in zip(order, shipped.classes)}
    names = {info.code: info.name for info in shipped.classes}
    return replace(labelled, records=[replace(r, label=mapping[r.label]) for r in records], class_names=names)


def stage_registry(run: DomainAdd) -> dict:
    run.registry = write_entry(run.registry, run.entry())
    return {"user_registry": str(run.user_path)}


def stage_adapter(run: DomainAdd) -> dict:
    from medsynth.training.config import LoraTrainConfig
    from medsynth.training.lora import train_lora

    pack = run.pack
    adapter = train_lora(
        LoraTrainConfig(
            domain=run.name,
            base=pack.base.location,
            text_encoder=pack.text_encoder.spec if pack.text_encoder else "",
            out=run.out / "adapter",
            rank=run.config.lora_rank,
            targets="attention+resnet",
            steps=run.config.lora_steps,
            batch_size=run.config.batch_size,
            class_power=1.0,  # every class drawn equally often: the rare ones are what a user's domain needs most
        ),
        run.registry,
    )
    return {"adapter": str(adapter)}


def stage_classifier(run: DomainAdd) -> dict:
    from medsynth.training.classifier import train_classifier
    from medsynth.training.config import ClassifierTrainConfig

    out = train_classifier(
        ClassifierTrainConfig(
            domain=run.name,
            out=run.out / "classifier",
            image_size=run.resolution,
            epochs=run.config.classifier_epochs,
        ),
        run.registry,
    )
    metrics = json.loads((out / "config.json").read_text()).get("metrics", {})
    return {"classifier": str(out), "val": {k: v for k, v in metrics.items() if isinstance(v, (int, float))}}


def pack_clip_folder(run: DomainAdd) -> Path:
    """The CLIP the pack's domains share (the one most of them name)."""
    folders = [
        d.sources_for(run.pack.name).clip
        for d in run.registry.domains.values()
        if d.name != run.name and d.sources_for(run.pack.name).clip is not None
    ]
    local = [s.path for s in folders if s.path is not None and s.path.is_dir()]
    if not local:
        raise DataProblem(f"pack {run.pack.name} has no local CLIP model a new domain could share")
    return max(set(local), key=local.count)


def stage_clip(run: DomainAdd) -> dict:
    """The pack's CLIP, linked into the domain's folder with this domain's real-image alignment percentiles."""
    import torch

    from medsynth.models.clip import CONFIG_NAME, REFERENCE_NAME, load_clip
    from medsynth.registry import Source
    from medsynth.training.clip import alignment_reference
    from medsynth.training.config import ClipTrainConfig

    shared, folder = pack_clip_folder(run), run.out / "clip"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for file in shared.iterdir():
        if file.is_file() and file.name != REFERENCE_NAME:
            try:
                os.link(file, folder / file.name)  # no second copy of the weights where the disk allows
            except OSError:
                shutil.copy2(file, folder / file.name)
    clip = load_clip(Source.parse(str(folder), folder))
    size = json.loads((folder / CONFIG_NAME).read_text())["model_cfg"]["vision_cfg"]["image_size"]
    registry = run.measured_registry()
    with torch.no_grad():
        reference = alignment_reference(
            clip.model,
            clip.tokenizer,
            registry,
            ClipTrainConfig(out=folder, domains=(run.name,), resolution=size),
            "cpu",
        )
    (folder / REFERENCE_NAME).write_text(json.dumps(reference))
    return {"clip": str(folder), "shared_with": str(shared)}


def stage_evaluator(run: DomainAdd) -> dict:
    from medsynth.training.config import EvaluatorTrainConfig
    from medsynth.training.evaluator import train_evaluator

    out = train_evaluator(
        EvaluatorTrainConfig(
            domain=run.name,
            resolution=run.resolution,
            epochs=run.config.evaluator_epochs,
            degrade=0.0,  # clean, like the pack's 128 px evaluators: a blur must not pass for a finding
            root=run.out / "evaluators",
        ),
        run.registry,
    )
    return {"evaluator": str(out)}


def stage_guidance(run: DomainAdd) -> dict:
    """Each guidance scale on val, scored by the domain's own evaluator; the best macro-F1 is served (ties: the lower
    Fréchet excess)."""
    from medsynth.research.config import SamplingSweepConfig
    from medsynth.research.sampling_sweep import sweep_sampling

    report = sweep_sampling(
        SamplingSweepConfig(
            domain=run.name,
            guidance=run.config.guidance,
            modes=("lora",),
            per_class=run.config.sweep_per_class,
            pack=run.pack.name,
            evaluators=run.out / "evaluators",
            out=run.out / "guidance",
        ),
        run.measured_registry(),
    )
    settings = json.loads((report.parent / "results.json").read_text())["settings"].values()
    best = max(settings, key=lambda s: (round(s["evaluator_macro_f1"], 3), -s["frechet_excess"]))
    return {"guidance": best["guidance"], "val_macro_f1": best["evaluator_macro_f1"], "report": str(report)}


def stage_report(run: DomainAdd) -> dict:
    from medsynth.research.config import PackEvaluationConfig
    from medsynth.research.evaluate_pack import evaluate_pack

    registry = write_entry(run.registry, run.entry(run.sources(run.result("guidance")["guidance"])), keep=False)
    report = evaluate_pack(
        PackEvaluationConfig(
            pack=run.pack.name,
            domains=(run.name,),
            per_class=run.config.eval_per_class,
            modes=("base", "lora"),
            split="test",
            out=run.out / "report",
            evaluators=(run.out / "evaluators",),
        ),
        registry,
    )
    return {"report": str(report)}


def stage_register(run: DomainAdd) -> dict:
    run.registry = write_entry(run.registry, run.entry(run.sources(run.result("guidance")["guidance"])))
    return {"user_registry": str(run.user_path)}


STAGES = (
    Stage("data", "check the images, split them and write them at the pack's size", stage_data),
    Stage("registry", "write the domain's entry into the user registry (unavailable until the end)", stage_registry),
    Stage("adapter", "train its LoRA adapter on the pack's shared base", stage_adapter),
    Stage("classifier", "train its classifier (best epoch on val, calibrated)", stage_classifier),
    Stage("clip", "its real images' alignment percentiles under the pack's CLIP", stage_clip),
    Stage("evaluator", "train the independent evaluator that measures generated images", stage_evaluator),
    Stage("guidance", "choose the guidance scale on val", stage_guidance),
    Stage("report", "evaluate on test once, with pictures", stage_report),
    Stage("register", "serve it: the entry's sources and guidance in the user registry", stage_register),
)


def add_domain(config: DomainAddConfig, registry: Registry) -> Path:
    """Run (or continue) every stage and say what came out; the domain's report."""
    run = DomainAdd(config, registry)
    progress = run.run(STAGES)
    print(summary(run, progress))
    return Path(progress["done"]["report"]["report"])


def summary(run: DomainAdd, progress: dict) -> str:
    """What the user gets: where the domain is registered, its guidance, and per class the evaluator's recall on
    generated test-set images beside its recall on real ones."""
    from medsynth.research.pack_results import PackEvaluation

    measured = PackEvaluation.load(run.out / "report" / "results.json").domains[run.name]
    real = measured.evaluator_real.per_class_recall
    generated = measured.modes["lora"].evaluator_per_class_recall
    lines = [
        f"{run.name} is registered in {run.user_path} ({progress['wall_time_s'] / 60:.1f} min this run); restart the "
        f"app to serve it, or: python -m medsynth generate --domain {run.name} --label {measured.classes[0]}",
        f"guidance {progress['done']['guidance']['guidance']:g} (chosen on val); per class, the evaluator's recall on "
        "generated test-set images | on real test images:",
    ]
    for code in measured.classes:
        lines.append(f"  {code:<20} {generated[code]:.2f} | {real[code]:.2f}")
    return "\n".join(lines)
