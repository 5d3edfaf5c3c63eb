"""MODEL_CARD.md of the embedded pack, rendered from the pack's files, its training records, the registry
and the evaluation results.

The prose (history, intended use, limitations that are not about one domain) is the pack's own
`card/template.md`; this module fills its `<!-- medsynth:NAME -->` slots and writes no number of its own.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open

from medsynth.configs import command_line
from medsynth.data.folders import load_metadata
from medsynth.pack.assemble import DECODER_RECORD, base_records
from medsynth.pack.config import ModelCardConfig
from medsynth.paths import PROJECT_ROOT, domain_folder
from medsynth.registry import Registry
from medsynth.research.pack_results import MODES, PackEvaluation
from medsynth.research.reports import CLASS_RECALL_SHARE, classes_not_drawn
from medsynth.training.lora import LoraTrainConfig

SLOT = "<!-- medsynth:{} -->"


def _record(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _parameters_millions(folder: Path) -> float | None:
    """Parameters of every safetensors file in a folder, read from the headers (no weights loaded)."""
    files = list(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        with safe_open(file, "pt") as handle:
            for key in handle.keys():
                total += _numel(handle.get_slice(key).get_shape())
    return total / 1e6


def _numel(shape: list[int]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


# the options a training record's config holds that its command line must repeat
COMMAND_OPTIONS = ("steps", "targets", "epochs", "image_size", "stem", "select")
# a continued run (base, or decoder on the frozen encoder) also needs its start and its own folder
CONTINUED_OPTIONS = ("lr", "init_unet", "init_vae", "decoder_only", "adversarial_weight", "out")
TARGET_WORDS = {
    "attention": "attention and feed-forward projections",
    "attention+resnet": "attention, feed-forward and ResNet-block convolutions",
}
STEM_WORDS = {
    "imagenet": "7×7 stride-2 stem + max-pool",
    "conv3s1": "3×3 stride-1 stem",
    "conv3s2": "3×3 stride-2 stem",
}


def _describe_loras(configs: list[dict]) -> str:
    kinds = sorted({(c.get("rank", 8), c.get("targets", "attention")) for c in configs if c})
    return "; ".join(f"rank {rank}, {TARGET_WORDS.get(targets, targets)}" for rank, targets in kinds) or "no records"


def _describe_classifiers(configs: dict[str, dict]) -> str:
    """Input size and stem of each shipped classifier, from its config.json."""
    kinds: dict[tuple[int, str], list[str]] = {}
    for domain, config in configs.items():
        if config:
            kinds.setdefault((config["image_size"], config["stem"]), []).append(domain)
    return (
        "; ".join(
            f"{size}×{size} px, {STEM_WORDS.get(stem, stem)}: {', '.join(domains)}"
            for (size, stem), domains in kinds.items()
        )
        or "no records"
    )


def _widths(configs: dict[str, dict]) -> str:
    widths = sorted({c.get("base_width") for c in configs.values() if c.get("base_width")})
    return ", ".join("-".join(str(w * 2**i) for i in range(4)) for w in widths) or "–"


def _contents(
    pack: Path, registry: Registry, pack_name: str, domains: tuple[str, ...], classifier_configs: dict[str, dict]
) -> str:
    vae = _record(pack / "base" / "vae" / "config.json")
    unet_params = _parameters_millions(pack / "base" / "unet")
    clip = _record(pack / "clip" / "open_clip_config.json").get("model_cfg", {})
    model = registry.get_pack(pack_name)
    lora_configs = [_record(pack / "lora" / d / f"training_lora_{d}.json").get("config", {}) for d in domains]
    autoencoder = "AutoencoderKL"
    if vae:
        size, factor = vae["sample_size"], 2 ** (len(vae["block_out_channels"]) - 1)
        autoencoder += f" ({size}×{size} ↔ {size // factor}×{size // factor}×{vae['latent_channels']})"
    unet = "UNet2DConditionModel" + (f" ({unet_params:.1f} M parameters)" if unet_params else "")
    if model.text_encoder is not None and model.text_encoder.package:
        text = f"the frozen text encoder's weights come from the Python package `{model.text_encoder.package}` (config kept here)"
    elif model.text_encoder is not None:
        text = f"the frozen text encoder's weights come from `{model.text_encoder.spec}` (config kept here)"
    else:
        text = "its text encoder"
    lines = [
        f"- `base/`: diffusers StableDiffusionPipeline folder — {autoencoder}, {unet}, DDPM training schedule (sampled with "
        f"DPM-Solver++), tokenizer; {text}.",
        f"- `lora/<domain>/`: one LoRA per domain ({_describe_loras(lora_configs)}), loaded with `load_lora_weights(..., adapter_name=domain)`.",
        f"- `classifiers/<domain>/`: ResNet-18-family classifiers (torchvision BasicBlock [2,2,2,2], stage widths {_widths(classifier_configs)}; "
        f"{_describe_classifiers(classifier_configs)}), trained from scratch with class-weighted loss, chosen on val, temperature-calibrated on val.",
    ]
    if clip:
        vision, txt = clip["vision_cfg"], clip["text_cfg"]
        lines.append(
            f"- `clip/`: small open_clip CLIP (ViT {vision['layers']}×{vision['width']} on {vision['patch_size']}-px patches, text transformer "
            f"{txt['layers']}×{txt['width']}) trained on image–caption pairs of the pack's domains, with real-image alignment percentiles per class."
        )
    budget = f" (budget {model.size_budget_mb:g} MB)" if model.size_budget_mb else ""
    lines.append(f"- Size on disk: {_size_mb(pack):.1f} MB{budget}.")
    return "\n".join(lines)


def _split_counts(domain: str) -> str:
    try:
        splits = load_metadata(domain_folder(domain))["split"].value_counts()
    except (FileNotFoundError, KeyError, ValueError):
        return "data not found"
    return " / ".join(f"{splits.get(name, 0):,}" for name in ("train", "val", "test"))


def _data_table(registry: Registry, pack_name: str) -> str:
    lines = ["| domain | source | licence | images used (train / val / test) |", "|---|---|---|---|"]
    for name, domain in registry.domains.items():
        reason = domain.sources_for(pack_name).unavailable
        if reason:
            lines.append(f"| {name} | not in this pack: {reason} | {domain.data.licence or '–'} | – |")
        else:
            lines.append(f"| {name} | {domain.data.description} | {domain.data.licence} | {_split_counts(name)} |")
    return "\n".join(lines)


def _training_rows(pack: Path, domains: tuple[str, ...]) -> str:
    components = [("autoencoder", pack / "base" / "training_autoencoder.json", "python -m medsynth train autoencoder")]
    if (pack / "base" / DECODER_RECORD).exists():
        components.append(
            ("autoencoder decoder, continued", pack / "base" / DECODER_RECORD, "python -m medsynth train autoencoder")
        )
    runs = base_records(pack / "base")
    continued = len(runs) > 1
    for i, record in enumerate(runs, 1):  # a base continued from earlier runs: every run, in order
        name = f"shared base UNet, run {i} of {len(runs)}" if continued else "shared base UNet"
        components.append((name, record, "python -m medsynth train base"))
    for domain in domains:
        components.append(
            (
                f"LoRA {domain}",
                pack / "lora" / domain / f"training_lora_{domain}.json",
                f"python -m medsynth train lora --domain {domain}",
            )
        )
    for domain in domains:
        components.append(
            (
                f"classifier {domain}",
                pack / "classifiers" / domain / "training_classifier.json",
                f"python -m medsynth train classifier --domain {domain}",
            )
        )
    components.append(("CLIP", pack / "clip" / "training_clip.json", "python -m medsynth train clip"))
    rows = ["| component | command | steps / epochs | wall time | hardware |", "|---|---|---:|---:|---|"]
    default_power = LoraTrainConfig.__dataclass_fields__["class_power"].default
    for name, path, command in components:
        record = _record(path)
        used = record.get("config", {})
        options = COMMAND_OPTIONS + (CONTINUED_OPTIONS if used.get("init_unet") or used.get("init_vae") else ())
        if continued and name.startswith("LoRA "):  # trained on the continued base, not the default folder
            options += ("base", "out")
        if (
            name.startswith("LoRA ") and used.get("class_power", default_power) != default_power
        ):  # another class balance says so
            options += ("class_power",)
        command = command_line(command, {k: used[k] for k in options if k in used})
        rows.append(
            f"| {name} | `{command}` | {record.get('steps', '–')} | {record.get('wall_time_s', 0) / 60:.1f} min | {record.get('hardware', '–')} |"
        )
    return "\n".join(rows)


def _validation_table(pack: Path, classifier_configs: dict[str, dict]) -> str:
    lines = [
        "| domain | classifier acc / bal. acc / macro-F1 | temperature | ECE before → after | CLIP zero-shot |",
        "|---|---|---:|---|---:|",
    ]
    clip = _record(pack / "clip" / "training_clip.json").get("metrics", {})
    for domain, config in classifier_configs.items():
        m = config.get("metrics", {})
        if m:
            lines.append(
                f"| {domain} | {m['val_accuracy']:.3f} / {m['val_balanced_accuracy']:.3f} / {m['val_macro_f1']:.3f} | {config['temperature']:.2f} | "
                f"{m['val_ece_before']:.3f} → {m['val_ece_after']:.3f} | {clip.get(f'val_zero_shot_accuracy_{domain}', float('nan')):.3f} |"
            )
    return "\n".join(lines)


def _quality(results_path: Path) -> str:
    if not results_path.is_file():
        return "_The test-split evaluation (`python -m medsynth evaluate-pack`) has not been run for this pack yet._"
    report = results_path.parent / "REPORT.md"
    shown = report.relative_to(PROJECT_ROOT) if report.is_relative_to(PROJECT_ROOT) else report
    lines = ["## Measured quality (real test split)", "", f"Full report with pictures: `{shown}`.", "",
             "| domain | classifier acc / bal. acc / macro-F1 | CLIP zero-shot | evaluator F1 (panel mean): base → LoRA → validated | Fréchet: base → LoRA (floor) |",
             "|---|---|---:|---|---|"]  # fmt: skip
    results = PackEvaluation.load(results_path)
    for name, r in results.domains.items():
        c = r.classifier_real
        f1 = {mode: f"{r.modes[mode].panel_mean:.3f}" if mode in r.modes else "–" for mode in MODES}
        lines.append(
            f"| {name} | {c.accuracy:.3f} / {c.balanced_accuracy:.3f} / {c.macro_f1:.3f} | {r.clip_zero_shot_accuracy:.3f} | "
            f"{f1['base']} → {f1['lora']} → {f1['validated']} | "
            f"{r.modes['base'].frechet_distance:.1f} → {r.modes['lora'].frechet_distance:.1f} ({r.frechet_floor:.1f}) |"
        )
    failing = {name: classes_not_drawn(r) for name, r in results.domains.items()}
    if any(failing.values()):
        listed = "; ".join(f"{name}: {', '.join(codes)}" for name, codes in failing.items() if codes)
        lines += ["", f"**Classes the adapters do not draw** (evaluator recall on generated images under "
                      f"{CLASS_RECALL_SHARE:g}× its recall on real ones): {listed}. A trainee who asks for them gets an "
                      "image that does not show the finding."]  # fmt: skip
    return "\n".join(lines)


def _resolution(pack: Path) -> str:
    vae = _record(pack / "base" / "vae" / "config.json")
    return f"{vae['sample_size']}×{vae['sample_size']}" if vae else "the autoencoder's resolution"


def render_model_card(config: ModelCardConfig, registry: Registry) -> Path:
    pack = Path(config.pack_dir)
    domains = registry.trained_domains(config.pack)
    classifier_configs = {domain: _record(pack / "classifiers" / domain / "config.json") for domain in domains}
    limitations = "\n".join(
        "- " + registry.get_domain(d).limitations.replace("\n", "\n  ") for d in domains if registry.get_domain(d).limitations
    )  # fmt: skip
    slots = {
        "contents": _contents(pack, registry, config.pack, domains, classifier_configs),
        "data": _data_table(registry, config.pack),
        "resolution": _resolution(pack),
        "training": _training_rows(pack, domains),
        "validation": _validation_table(pack, classifier_configs),
        "quality": _quality(Path(config.results)),
        "domain-limitations": limitations,
    }
    text = Path(config.template).read_text(encoding="utf-8")
    for name, value in slots.items():
        text = text.replace(SLOT.format(name), value)
    path = pack / "MODEL_CARD.md"
    path.write_text(text.rstrip() + "\n")
    return path
