"""Generator on tiny random pipelines saved to disk and loaded through the app's loaders."""

import numpy as np
import pytest
import torch
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file

from medsynth.generation.pipeline import Generator, GeneratorLoadError, autoencoder_round_trip
from medsynth.models.lora import LORA_TARGETS, add_lora
from medsynth.registry import Source
from tests.support.tiny_pack import build_tiny_pack, max_pixel_difference, save_tiny_lora

PROMPT = "alpha scan showing a1 finding"


def pixels(images):
    return np.stack([np.asarray(image, dtype=np.int16) for image in images])


@pytest.fixture(scope="module")
def generator(tiny_pack):
    # float32 arithmetic: the exactness checks below (fusing, batching, threads) are about float32 sums
    generator = Generator(Source.parse("base", tiny_pack.root), cpu_bf16=False)
    for domain in ("alpha", "beta"):
        generator.add_adapter(domain, Source.parse(f"lora/{domain}", tiny_pack.root))
    return generator


def test_same_request_and_seed_give_identical_pixels(generator):
    first = pixels(generator.generate(PROMPT, [3, 4], adapter="alpha", steps=4, guidance=3.0))
    again = pixels(generator.generate(PROMPT, [3, 4], adapter="alpha", steps=4, guidance=3.0))
    other = pixels(generator.generate(PROMPT, [5, 6], adapter="alpha", steps=4, guidance=3.0))
    assert first.shape == (2, 32, 32, 3)
    assert np.array_equal(first, again)
    assert np.abs(first - other).mean() > 1.0


def test_lora_changes_pixels_and_switching_back_restores_them(generator):
    bare = pixels(generator.generate(PROMPT, [11], adapter=None, steps=4))
    alpha = pixels(generator.generate(PROMPT, [11], adapter="alpha", steps=4))
    beta = pixels(generator.generate(PROMPT, [11], adapter="beta", steps=4))
    alpha_again = pixels(generator.generate(PROMPT, [11], adapter="alpha", steps=4))
    bare_again = pixels(generator.generate(PROMPT, [11], adapter=None, steps=4))
    assert np.abs(alpha - bare).mean() > 1.0
    assert np.abs(alpha - beta).mean() > 1.0
    assert np.array_equal(alpha, alpha_again)
    assert np.array_equal(bare, bare_again)


def test_fused_adapter_matches_the_unfused_lora_and_unfusing_is_exact(generator, tiny_pack):
    import torch

    def base_weights():
        return {k: v.clone() for k, v in generator.pipe.unet.state_dict().items() if "lora_" not in k}

    generator.use_adapter(None)
    before = base_weights()
    fused = pixels(generator.generate(PROMPT, [7, 8], adapter="alpha", steps=4))
    assert generator._fused
    for adapter in ("beta", None, "alpha", "beta", None) * 3:
        generator.use_adapter(adapter)
    after = base_weights()
    assert all(torch.equal(before[k], after[k]) for k in before)  # no drift however often domains alternate

    unfused_generator = Generator(Source.parse("base", tiny_pack.root), fuse_adapters=False, cpu_bf16=False)
    unfused_generator.add_adapter("alpha", Source.parse("lora/alpha", tiny_pack.root))
    unfused = pixels(unfused_generator.generate(PROMPT, [7, 8], adapter="alpha", steps=4))
    assert not unfused_generator._fused
    assert np.abs(fused - unfused).max() <= 1  # fusing re-associates the same sums: at most a rounding flip


def test_adapters_are_switched_not_reloaded(generator, monkeypatch):
    calls = []
    monkeypatch.setattr(generator.pipe, "load_lora_weights", lambda *a, **k: calls.append(a))
    for adapter in ("alpha", "beta", None, "alpha"):
        generator.generate(PROMPT, [1], adapter=adapter, steps=1)
    assert calls == []
    assert set(generator.pipe.get_list_adapters()["unet"]) == {"alpha", "beta"}


def test_batched_generation_equals_one_by_one(generator):
    seeds = [21, 22, 23]
    batched = pixels(generator.generate(PROMPT, seeds, adapter="beta", steps=4))
    single = pixels([generator.generate(PROMPT, [s], adapter="beta", steps=4)[0] for s in seeds])
    # float32 kernels may block differently per batch size: allow a rare one-level rounding flip
    diff = np.abs(batched - single)
    assert diff.max() <= 1 and diff.mean() < 0.01


def test_progress_reports_every_step(generator):
    seen = []
    generator.generate(
        PROMPT, [1, 2], adapter="alpha", steps=3, progress=lambda done, total: seen.append((done, total))
    )
    assert seen == [(2, 6), (4, 6), (6, 6)]


def test_unknown_adapter_is_a_clear_error(generator):
    with pytest.raises(KeyError, match="no adapter loaded for 'gamma'"):
        generator.generate(PROMPT, [1], adapter="gamma", steps=1)


def test_cpu_weights_are_float32_with_bf16_autocast_where_the_probe_chose_it(generator, tiny_pack):
    from medsynth.precision import cpu_bf16_enabled

    info = generator.info("alpha")
    assert info.dtype == "float32" and info.device == "cpu" and generator.pipe.unet.dtype == torch.float32
    default = Generator(Source.parse("base", tiny_pack.root))  # the setting's default: by the measured probe
    assert default.info(None).dtype == ("float32, bfloat16 autocast" if cpu_bf16_enabled() else "float32")
    assert "dpmsolver++, leading spacing" in info.scheduler and "zero terminal SNR" not in info.scheduler
    assert generator.pipe.scheduler.config.algorithm_type == "dpmsolver++"
    assert info.adapter.endswith("lora/alpha")


def test_bf16_generation_equals_float32_within_a_few_grey_levels(tiny_pack):
    """Stated tolerance: bf16 autocast moves no pixel by more than 8 of 255 and the mean by at most 1.5 (measured on
    this tiny pack: at most 3, mean 0.4, for 4 and 20 steps); the pack's own difference is measured on val."""
    images = {}
    for bf16 in (False, True):
        generator = Generator(Source.parse("base", tiny_pack.root), cpu_bf16=bf16)
        generator.add_adapter("alpha", Source.parse("lora/alpha", tiny_pack.root))
        images[bf16] = pixels(generator.generate(PROMPT, [1, 2, 3], adapter="alpha", steps=20, guidance=3.0))
    difference = np.abs(images[True] - images[False])
    assert 0 < difference.max() <= 8 and difference.mean() <= 1.5  # different arithmetic, same picture


def test_sd15_layout_with_clip_text_encoder_loads_through_the_same_loaders(tmp_path):
    """The SD 1.5 path: CLIPTextModel + CLIPTokenizer + hub-format LoRA, here tiny and random."""
    pack = build_tiny_pack(tmp_path, text="clip", pack="sd15")
    generator = Generator(Source.parse("base", pack.root))
    generator.add_adapter("alpha", Source.parse("lora/alpha", pack.root))
    assert type(generator.pipe.text_encoder).__name__ == "CLIPTextModel"
    bare = pixels(generator.generate(PROMPT, [0], adapter=None, steps=3))
    lora = pixels(generator.generate(PROMPT, [0], adapter="alpha", steps=3))
    assert np.abs(bare - lora).mean() > 1.0


def test_hub_model_without_network_names_the_model_and_the_offline_way(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(GeneratorLoadError) as error:
        Generator(Source.parse("hf-hub:stable-diffusion-v1-5/stable-diffusion-v1-5", tmp_path_dummy()))
    message = str(error.value)
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in message and "MEDSYNTH_PACK=mini" in message
    assert "Traceback" not in message


def test_missing_local_lora_is_a_clear_error(generator, tmp_path):
    with pytest.raises(GeneratorLoadError, match="LoRA adapter 'gamma'"):
        generator.add_adapter("gamma", Source.parse("nowhere", tmp_path))


def tmp_path_dummy():
    from pathlib import Path

    return Path("/nonexistent")


def test_concurrent_requests_get_the_same_pixels_as_sequential_ones(generator):
    """The app serves requests from several threads; each must see its own adapter and schedule."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [("alpha", 1), ("beta", 2), (None, 3), ("alpha", 4), ("beta", 5), (None, 6)]
    expected = [pixels(generator.generate(PROMPT, [seed], adapter=a, steps=4)) for a, seed in jobs]
    with ThreadPoolExecutor(6) as pool:
        results = list(
            pool.map(lambda job: pixels(generator.generate(PROMPT, [job[1]], adapter=job[0], steps=4)), jobs)
        )
    # worker threads may split float sums differently from the main thread (rounding flips of one grey
    # level); another request's adapter or schedule would change pixels by far more
    for got, want in zip(results, expected):
        assert np.abs(got - want).max() <= 1


@pytest.mark.parametrize("targets", list(LORA_TARGETS))
def test_every_saved_lora_layer_is_loaded_back(tiny_pack, tmp_path, targets):
    # diffusers' loader drops layers it cannot map without an error: compare layer by layer
    folder = save_tiny_lora(tiny_pack.root / "base", tmp_path / "lora", seed=7, targets=targets)
    saved = load_file(folder / "pytorch_lora_weights.safetensors")
    generator = Generator(Source.parse("base", tiny_pack.root))
    generator.add_adapter("gamma", Source.parse(str(folder), tiny_pack.root))
    loaded = {
        f"unet.{key}": value
        for key, value in get_peft_model_state_dict(generator.pipe.unet, adapter_name="gamma").items()
    }
    assert set(loaded) == set(saved)
    assert all(torch.equal(loaded[key], saved[key]) for key in saved)
    adapted = {key.split(".lora_")[0].rsplit(".", 1)[-1] for key in saved}
    assert {"to_q", "to_k", "to_v", "proj_in"} <= adapted
    assert ({"conv1", "conv2", "time_emb_proj"} <= adapted) == (targets == "attention+resnet")
    # fusing into convolutions too changes the images and restores the base exactly
    before = {k: v.clone() for k, v in generator.pipe.unet.state_dict().items() if "lora_" not in k}
    bare = pixels(generator.generate(PROMPT, [2], adapter=None, steps=3))
    tuned = pixels(generator.generate(PROMPT, [2], adapter="gamma", steps=3))
    assert generator._fused and np.abs(bare - tuned).mean() > 1.0
    generator.use_adapter(None)
    assert all(torch.equal(before[k], v) for k, v in generator.pipe.unet.state_dict().items() if "lora_" not in k)


def test_unknown_lora_targets_are_refused(tiny_pack):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_pack.root / "base", subfolder="unet")
    with pytest.raises(ValueError, match="unknown LoRA targets 'everything'"):
        add_lora(unet, targets="everything")


def test_unconditional_half_runs_on_the_bare_base_only_inside_the_block(tiny_pack):
    from medsynth.generation.pipeline import unconditional_from

    pristine = Generator(Source.parse("base", tiny_pack.root)).pipe.unet
    guided = Generator(Source.parse("base", tiny_pack.root))
    guided.add_adapter("beta", Source.parse("lora/beta", tiny_pack.root))  # LoRA layers exist before the copy
    guided.add_adapter("alpha", Source.parse("lora/alpha", tiny_pack.root), base_unconditional=True)
    guided.use_adapter("alpha")
    unet, bare = guided.pipe.unet, guided.bare_unet
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(4, unet.config.in_channels, 8, 8, generator=generator)
    text = torch.randn(4, 5, unet.config.cross_attention_dim, generator=generator)
    with torch.no_grad():
        with_lora = unet(sample, 10, text, return_dict=False)[0]
        without = pristine(sample, 10, text, return_dict=False)[0]
        with unconditional_from(unet, bare):
            split = unet(sample, 10, text, return_dict=False)[0]
        after = unet(sample, 10, text, return_dict=False)[0]
    assert (with_lora - without).abs().max() > 1e-4  # the adapter does change the prediction
    torch.testing.assert_close(split[:2], without[:2])  # unconditional half: the bare base, no adapter at all
    torch.testing.assert_close(split[2:], with_lora[2:])  # conditional half: base + LoRA
    torch.testing.assert_close(after, with_lora)  # the override ends with the block


def test_base_unconditional_guidance_changes_only_that_adapters_guided_images(generator, tiny_pack):
    guided = Generator(Source.parse("base", tiny_pack.root), cpu_bf16=False)  # bit-exact comparisons below
    guided.add_adapter("alpha", Source.parse("lora/alpha", tiny_pack.root), base_unconditional=True)
    guided.add_adapter("beta", Source.parse("lora/beta", tiny_pack.root))
    for adapter, guidance in ((None, 3.0), ("alpha", 1.0), ("beta", 3.0)):  # nothing to split: the usual pixels
        usual = pixels(generator.generate(PROMPT, [21], adapter=adapter, steps=4, guidance=guidance))
        assert np.array_equal(pixels(guided.generate(PROMPT, [21], adapter=adapter, steps=4, guidance=guidance)), usual)
    usual = pixels(generator.generate(PROMPT, [21, 22], adapter="alpha", steps=4, guidance=3.0))
    by_base = pixels(guided.generate(PROMPT, [21, 22], adapter="alpha", steps=4, guidance=3.0))
    assert np.abs(by_base - usual).mean() > 0.5
    assert np.array_equal(pixels(guided.generate(PROMPT, [21, 22], adapter="alpha", steps=4, guidance=3.0)), by_base)
    assert [guided.info(a).unconditional for a in ("alpha", "beta", None)] == ["bare base", "same model", "same model"]


def test_reconstruct_is_the_autoencoders_round_trip_and_ignores_adapters(generator):
    def same(a, b):  # batch size may change the CPU kernels' summation order (seen under load): one rounding step
        return a.shape == b.shape and max_pixel_difference(a, b) <= 1

    real = np.random.default_rng(0).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    out = autoencoder_round_trip(generator.pipe.vae, real, batch_size=2)  # two batches
    assert same(generator.reconstruct(real), out)
    assert out.shape == real.shape and out.dtype == np.uint8
    vae = generator.pipe.vae
    with torch.no_grad():
        x = torch.from_numpy(real[:1]).permute(0, 3, 1, 2).float() / 127.5 - 1
        expected = ((vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1) + 1) * 127.5).round()
    assert same(out[:1], expected.to(torch.uint8).permute(0, 2, 3, 1).numpy())
    generator.use_adapter("alpha")  # a LoRA lives in the UNet: the autoencoder's ceiling is the base's
    assert same(generator.reconstruct(real), out)
    generator.use_adapter(None)
    assert generator.reconstruct(real[:0]).shape == (0, 32, 32, 3)


def test_loading_several_adapters_raises_no_peft_warning(tiny_pack):
    import warnings

    generator = Generator(Source.parse("base", tiny_pack.root), cpu_bf16=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for domain in ("alpha", "beta"):
            generator.add_adapter(domain, Source.parse(f"lora/{domain}", tiny_pack.root))
    assert not [w for w in caught if "peft_config" in str(w.message)]
