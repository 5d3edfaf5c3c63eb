"""Assemble the embedded pack from finished runs: the layout assets/registry.toml expects."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from medsynth.pack.config import PackAssembleConfig
from medsynth.registry import Registry

# the records of the runs a continued base began from (`train base --init-unet`), each named after its run folder
EARLIER_RUNS = "earlier_runs"
# the record of a decoder fine-tuned on the frozen encoder (`train autoencoder --decoder-only`)
DECODER_RECORD = "training_decoder.json"
LATENT_KEYS = ("encoder.", "quant_conv.")  # the part of an AutoencoderKL that decides the latents


def _replace(source: Path, target: Path) -> None:
    if not source.exists():
        raise FileNotFoundError(f"{source} is missing: run its training command first")
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)


def _started_from(record: Path) -> str | None:
    """The --init-unet a base run continued from (<run>/pipeline/unet), None for one trained from scratch."""
    return json.loads(record.read_text())["config"].get("init_unet")


def _run_folder(init_unet: str) -> Path:
    return Path(init_unet).parent.parent  # <run>/pipeline/unet → <run>


def earlier_records(base_record: Path) -> list[Path]:
    """The training records of the runs a continued base began from, the first run first ([] for a base trained
    from scratch); --init-unet is read from where the commands ran."""
    chain: list[Path] = []
    record = base_record
    while (init_unet := _started_from(record)) is not None:
        record = _run_folder(init_unet) / "training_base.json"
        if not record.is_file():
            raise FileNotFoundError(f"the base continued from {init_unet}, but that run's record {record} is missing")
        if record in chain:
            raise ValueError(f"{record} continues from itself")
        chain.append(record)
    return chain[::-1]


def base_records(base: Path) -> list[Path]:
    """Every training record of a pack's base, the first run first: its earlier runs, then its own."""
    chain = [base / "training_base.json"]
    while chain[0].is_file() and (init_unet := _started_from(chain[0])) is not None:
        chain.insert(0, base / EARLIER_RUNS / f"{_run_folder(init_unet).name}.json")
        if not chain[0].is_file():
            raise FileNotFoundError(f"{chain[0]} is missing: the pack's base continued from {init_unet}")
    return chain


def checked_decoder(run: Path, base: Path) -> AutoencoderKL:
    """A fine-tuned autoencoder, refused unless its encoder is the one the base's UNet latents came from."""
    if not (run / "vae" / "config.json").is_file():
        raise FileNotFoundError(f"{run / 'vae'} is missing: run `train autoencoder --decoder-only` first")
    tuned = AutoencoderKL.from_pretrained(run / "vae")
    shipped = AutoencoderKL.from_pretrained(base / "vae")
    tuned_state, shipped_state = tuned.state_dict(), shipped.state_dict()

    def same(key: str) -> bool:
        theirs = tuned_state.get(key)
        ours = shipped_state[key]
        return (
            theirs is not None
            and theirs.shape == ours.shape
            and torch.allclose(ours.float(), theirs.float(), rtol=1e-3, atol=1e-4)
        )

    for key in shipped_state:
        if key.startswith(LATENT_KEYS) and not same(key):
            raise ValueError(
                f"{run / 'vae'} has another encoder than {base / 'vae'}: the base UNet was trained on other latents "
                "(fine-tune with `train autoencoder --decoder-only --init-vae` from the base pipeline's vae)"
            )
    tuned.register_to_config(
        scaling_factor=shipped.config.scaling_factor
    )  # calibrated on these latents by `train base`
    return tuned


def install_decoder(run: Path, base: Path, tuned: AutoencoderKL | None = None) -> None:
    """Swap a fine-tuned decoder into a base pipeline: only if its encoder is the one the UNet's latents came from
    (`tuned`: the run's autoencoder, already checked by `checked_decoder`)."""
    if tuned is None:
        tuned = checked_decoder(run, base)
    shutil.rmtree(base / "vae")
    tuned.half().save_pretrained(base / "vae", safe_serialization=True)  # the pipeline's precision
    shutil.copy2(run / "training_autoencoder.json", base / DECODER_RECORD)


def assemble_pack(config: PackAssembleConfig, registry: Registry) -> Path:
    """Copy the named runs' parts into the pack folder; every source is checked before anything is written."""
    base_run = config.runs / config.base_run
    base = config.out / "base"
    folders = {base_run / "pipeline": base}  # replaced whole
    autoencoder_record = config.runs / config.autoencoder_run / "training_autoencoder.json"
    files = {
        base_run / "training_base.json": base / "training_base.json",
        autoencoder_record: base / "training_autoencoder.json",
    }
    for domain in config.domains or registry.trained_domains():
        lora_run = config.runs / config.lora_run / domain
        folders[lora_run / "adapter"] = config.out / "lora" / domain
        files[lora_run / f"training_lora_{domain}.json"] = config.out / "lora" / domain / f"training_lora_{domain}.json"
        if config.classifier_run:  # a classifier folder is the pack's layout already (weights, config, record)
            folders[config.runs / config.classifier_run / domain] = config.out / "classifiers" / domain
    if config.clip_run:
        folders[config.runs / config.clip_run] = config.out / "clip"
    for source in [*folders, *files]:
        if not source.exists():
            hint = " (name the base's autoencoder run: --autoencoder-run)" if source == autoencoder_record else ""
            raise FileNotFoundError(f"{source} is missing: run its training command first{hint}")
    for record in earlier_records(base_run / "training_base.json"):
        files[record] = base / EARLIER_RUNS / f"{record.parent.name}.json"
    tuned = checked_decoder(config.runs / config.vae_run, base_run / "pipeline") if config.vae_run else None
    for source, target in folders.items():
        _replace(source, target)
    for source, target in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    if tuned is not None:
        install_decoder(config.runs / config.vae_run, base, tuned)
    return config.out
