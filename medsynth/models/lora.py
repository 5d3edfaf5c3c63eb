"""Per-domain LoRA adapters on the UNet, in the diffusers/peft format that load_lora_weights reads."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

# attention projections (what the diffusers LoRA scripts adapt) plus the transformer blocks'
# feed-forward and in/out projections: more room to learn a domain's texture on a small base
ATTENTION_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2")
# the ResNet blocks too (LoCon-style): on a 9 M-parameter base most of the image prior lives in
# the convolutions, which attention-only adapters cannot touch
RESNET_TARGETS = ("conv1", "conv2", "conv_shortcut", "time_emb_proj")
LORA_TARGETS = {"attention": ATTENTION_TARGETS, "attention+resnet": ATTENTION_TARGETS + RESNET_TARGETS}
ADAPTER_NAME = "default"


def add_lora(
    unet: UNet2DConditionModel,
    rank: int = 8,
    alpha: int | None = None,
    init_lora_weights: bool | str = True,
    targets: str = "attention",
) -> LoraConfig:
    """Freeze the UNet and attach trainable LoRA layers (init_lora_weights=False gives non-zero B).

    `targets` names a set of layers in LORA_TARGETS.
    """
    if targets not in LORA_TARGETS:
        raise ValueError(f"unknown LoRA targets {targets!r}; choose from {', '.join(LORA_TARGETS)}")
    unet.requires_grad_(False)
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha or rank,
        init_lora_weights=init_lora_weights,
        target_modules=list(LORA_TARGETS[targets]),
    )
    unet.add_adapter(config, adapter_name=ADAPTER_NAME)
    return config


def save_lora(unet: UNet2DConditionModel, folder: str | Path, dtype: torch.dtype = torch.float32) -> Path:
    """Save the UNet's LoRA (weights and its rank/alpha metadata) as pytorch_lora_weights.safetensors."""
    folder = Path(folder)
    # keys stay in peft's lora_A/lora_B form: convert_state_dict_to_diffusers renames only the
    # attention projections (to lora.down/up), and diffusers' loader then silently drops those
    # layers of a mixed dict (pack v1/v2 lost their attention LoRA weights that way)
    state = get_peft_model_state_dict(unet, adapter_name=ADAPTER_NAME)
    state = {key: value.detach().to("cpu", dtype).contiguous() for key, value in state.items()}
    StableDiffusionPipeline.save_lora_weights(
        save_directory=folder,
        unet_lora_layers=state,
        unet_lora_adapter_metadata=unet.peft_config[ADAPTER_NAME].to_dict(),
        safe_serialization=True,
    )
    return folder
