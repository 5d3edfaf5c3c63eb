"""Per-domain LoRA adapters on the UNet, in the diffusers/peft format that load_lora_weights reads."""

from __future__ import annotations

from pathlib import Path

import torch

from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

# attention projections (what the diffusers LoRA scripts adapt) plus the transformer blocks'
# feed-forward and in/out projections: more room to learn a domain's texture on a small base
LORA_TARGET_MODULES = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2")
ADAPTER_NAME = "default"


def add_lora(
    unet: UNet2DConditionModel, rank: int = 8, alpha: int | None = None, init_lora_weights: bool | str = True
) -> LoraConfig:
    """Freeze the UNet and attach trainable LoRA layers (init_lora_weights=False gives non-zero B)."""
    unet.requires_grad_(False)
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha or rank,
        init_lora_weights=init_lora_weights,
        target_modules=list(LORA_TARGET_MODULES),
    )
    unet.add_adapter(config, adapter_name=ADAPTER_NAME)
    return config


def save_lora(unet: UNet2DConditionModel, folder: str | Path, dtype: torch.dtype = torch.float32) -> Path:
    """Save the UNet's LoRA (weights and its rank/alpha metadata) as pytorch_lora_weights.safetensors."""
    folder = Path(folder)
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet, adapter_name=ADAPTER_NAME))
    state = {key: value.detach().to("cpu", dtype).contiguous() for key, value in state.items()}
    StableDiffusionPipeline.save_lora_weights(
        save_directory=folder,
        unet_lora_layers=state,
        unet_lora_adapter_metadata=unet.peft_config[ADAPTER_NAME].to_dict(),
        safe_serialization=True,
    )
    return folder
