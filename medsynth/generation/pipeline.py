"""Generator: one shared diffusion pipeline, every domain's LoRA loaded once, chosen per request."""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from diffusers import DiffusionPipeline, DPMSolverMultistepScheduler, StableDiffusionImg2ImgPipeline
from peft.tuners.tuners_utils import BaseTunerLayer
from PIL import Image

from medsynth.imaging import to_uint8, to_unit_tensor
from medsynth.precision import cpu_bf16_enabled, inference_device
from medsynth.registry import Source

logger = logging.getLogger(__name__)

OFFLINE_HINT = (
    "use the embedded offline pack instead (MEDSYNTH_PACK=mini), or pre-download the model into the Hugging Face cache"
)

# Our adapters are UNet-only by design; diffusers warns about it on every load.
for _name in ("diffusers.loaders.lora_base", "diffusers.loaders.peft"):
    logging.getLogger(_name).addFilter(lambda record: "No LoRA keys associated" not in record.getMessage())

ProgressCallback = Callable[[int, int], None]  # (steps done, steps total)


def quiet_libraries() -> None:
    """Progress bars and chatter of diffusers/transformers are noise in a CLI or web app."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


class GeneratorLoadError(RuntimeError):
    """A base pipeline or adapter could not be loaded; the message names it and the way out."""


def _load_error(what: str, source: Source, error: Exception) -> GeneratorLoadError:
    if source.is_hub:
        return GeneratorLoadError(
            f"could not load {what} '{source.hub_id}' from the Hugging Face Hub "
            f"(no network or not in the local cache: {type(error).__name__}); {OFFLINE_HINT}"
        )
    return GeneratorLoadError(f"could not load {what} from {source.path}: {error}")


def sampler_name(sampler: DPMSolverMultistepScheduler) -> str:
    """The sampler as provenance names it: its algorithm, where its steps start, and a zero terminal SNR schedule
    (the two samplers differ in what an image looks like, see medsynth.training.diffusion.noise_scheduler_for)."""
    config = sampler.config
    schedule = ", zero terminal SNR" if config.rescale_betas_zero_snr else ""
    return f"{type(sampler).__name__}({config.algorithm_type}, {config.timestep_spacing} spacing{schedule})"


@dataclass(frozen=True)
class GeneratorInfo:
    """What produced an image, for provenance."""

    base: str
    adapter: str | None
    scheduler: str
    device: str
    dtype: str
    unconditional: str = "same model"  # what the guidance's unconditional prediction came from


def load_text_encoder(base: Source, text_encoder: Source, dtype: torch.dtype):
    """Text encoder weights from `text_encoder`, architecture config from the base folder when it has one."""
    from transformers import AutoConfig, AutoModel

    config_folder = (
        base.path / "text_encoder" if base.path and (base.path / "text_encoder" / "config.json").exists() else None
    )
    config = AutoConfig.from_pretrained(config_folder or text_encoder.location)
    return AutoModel.from_pretrained(text_encoder.location, config=config, dtype=dtype)


def load_pipeline(
    base: Source, text_encoder: Source | None = None, dtype: torch.dtype = torch.float32
) -> DiffusionPipeline:
    """The base pipeline with diffusers' own loader; errors name the model and the way out."""
    extra = {}
    try:
        if text_encoder is not None:
            extra["text_encoder"] = load_text_encoder(base, text_encoder, dtype)
        return DiffusionPipeline.from_pretrained(
            base.location, dtype=dtype, safety_checker=None, requires_safety_checker=False, **extra
        )
    except Exception as error:  # diffusers raises OSError, ValueError or hub errors
        raise _load_error("base pipeline", base, error) from error


@contextlib.contextmanager
def unconditional_from(unet: torch.nn.Module, bare_unet: torch.nn.Module):
    """Within the block, the unconditional half of each guided UNet call runs on `bare_unet`.

    diffusers batches classifier-free guidance as [unconditional, conditional] in one UNet call;
    the pipeline offers no hook for the two halves, so the call is split by overriding this
    instance's forward for the duration of the block.
    """
    forward = unet.forward

    def split_forward(sample, timestep, encoder_hidden_states, *args, **kwargs):
        half = sample.shape[0] // 2
        uncond = bare_unet(
            sample[:half], timestep, encoder_hidden_states[:half], *args, **{**kwargs, "return_dict": False}
        )[0]
        cond = forward(
            sample[half:], timestep, encoder_hidden_states[half:], *args, **{**kwargs, "return_dict": False}
        )[0]
        return (torch.cat([uncond, cond]),)

    unet.forward = split_forward
    try:
        yield
    finally:
        del unet.forward  # back to the class's forward


@torch.no_grad()
def autoencoder_round_trip(vae, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Real images (uint8 NHWC) encoded and decoded: the most detail and class evidence any generated
    image can carry, whatever the UNet draws."""
    out = []
    for start in range(0, len(images), batch_size):
        pixels = to_unit_tensor(images[start : start + batch_size]).to(vae.device, vae.dtype)
        out.append(to_uint8(vae.decode(vae.encode(pixels).latent_dist.mode()).sample))
    return np.concatenate(out) if out else np.empty((0, *images.shape[1:]), dtype=np.uint8)


class Generator:
    """Owns the loaded pipeline; adapters are loaded once and switched by fusing, never reloaded."""

    def __init__(
        self, base: Source, text_encoder: Source | None = None, device: str | None = None, max_batch: int = 8,
        fuse_adapters: bool = True, cpu_bf16: bool | None = None,
    ) -> None:  # fmt: skip
        self.base = base
        self.device, self.dtype = inference_device(device)
        # CPU weights stay float32 and the matmuls run in bf16 under autocast (medsynth.precision; None: where the
        # CPU has bf16 units, unless MEDSYNTH_CPU_BF16 says otherwise); CUDA already holds half-precision weights
        self.cpu_bf16 = self.device.type == "cpu" and (cpu_bf16_enabled() if cpu_bf16 is None else cpu_bf16)
        self.max_batch = max_batch
        self.fuse_adapters = fuse_adapters  # False: PEFT applies the LoRA layer by layer (the benchmark's baseline)
        pipe = load_pipeline(base, text_encoder, self.dtype)
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, algorithm_type="dpmsolver++")
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(self.device)
        self.adapters: dict[str, Source] = {}
        self.base_guided: set[str] = set()  # adapters guided against the bare base (see add_adapter)
        self.bare_unet: torch.nn.Module | None = None
        self._active: str | None | bool = False  # False: not yet set
        self._fused = False  # the active adapter is merged into the UNet weights
        # LoRA-wrapped UNet layers and a copy of their own weights, for exact unfusing
        self._base_weights: dict[str, tuple[torch.nn.Module, torch.Tensor]] = {}
        # a pipeline is not thread-safe (scheduler state, active adapter): one call at a time
        self._lock = threading.Lock()
        self._img2img = None  # built on first use (counterfactuals), sharing every component with `pipe`
        logger.info("base pipeline %s loaded on %s (%s)", base.spec, self.device, self.dtype)

    def add_adapter(self, name: str, source: Source, base_unconditional: bool = False) -> None:
        """Load one LoRA under its own adapter name; done once, at start.

        base_unconditional: guide this adapter's conditional prediction away from the bare base's
        unconditional one instead of its own. A domain LoRA also learns the domain's unconditional
        image, which takes the domain out of the guidance direction; guiding against the bare base
        puts it back: images closer to the domain's (Fréchet), sometimes less class-specific
        (reports/lora_design). Costs one copy of the UNet (shared) and two half-batch UNet
        calls per step instead of one (same arithmetic; 1.41 s against 1.05 s in bench/bench_generator.py).
        """
        if name in self.adapters:
            raise ValueError(f"adapter {name!r} is already loaded")
        self._unfuse()  # new LoRA layers must wrap pristine base weights
        if base_unconditional and self.bare_unet is None:
            self.bare_unet = copy.deepcopy(self.pipe.unet).eval()
            if self.adapters:  # the copy carries the LoRA layers loaded so far: switch them off
                self.bare_unet.disable_adapters()
        try:
            with warnings.catch_warnings():  # peft warns on every adapter after the first; several are the design
                warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
                self.pipe.load_lora_weights(source.location, adapter_name=name)
        except Exception as error:
            raise _load_error(f"LoRA adapter '{name}'", source, error) from error
        self.adapters[name] = source
        if base_unconditional:
            self.base_guided.add(name)
        self._active = False  # peft activates a freshly loaded adapter; re-select on next use
        for module_name, module in self.pipe.unet.named_modules():
            if isinstance(module, BaseTunerLayer) and module_name not in self._base_weights:
                layer = module.get_base_layer()
                self._base_weights[module_name] = (layer, layer.weight.detach().clone())

    @property
    def tokenizer(self):
        return self.pipe.tokenizer

    @property
    def resolution(self) -> int:
        return int(self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor)

    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """Real images through this pipeline's autoencoder and back (see `autoencoder_round_trip`)."""
        return autoencoder_round_trip(self.pipe.vae, images)

    def info(self, adapter: str | None) -> GeneratorInfo:
        return GeneratorInfo(
            base=self.base.spec,
            adapter=self.adapters[adapter].spec if adapter else None,
            scheduler=sampler_name(self.pipe.scheduler),
            device=str(self.device),
            dtype=str(self.dtype).replace("torch.", "") + (", bfloat16 autocast" if self.cpu_bf16 else ""),
            unconditional="bare base" if adapter in self.base_guided else "same model",
        )

    def use_adapter(self, adapter: str | None) -> None:
        """Activate one domain's LoRA, fused into the UNet weights, or none (bare base); no weights are loaded.

        Fusing takes the LoRA matmuls out of every denoising step (the unfused PEFT layers cost
        about a fifth of the CPU step time of the mini pack). Switching unfuses and puts the saved
        base weights back, so the base stays bit-exact however often domains alternate.
        """
        if adapter == self._active:
            return
        if adapter is not None and adapter not in self.adapters:
            raise KeyError(f"no adapter loaded for {adapter!r}; loaded: {', '.join(self.adapters) or 'none'}")
        self._unfuse()
        if adapter is None:
            if self.adapters:
                self.pipe.disable_lora()
        else:
            self.pipe.enable_lora()
            self.pipe.set_adapters([adapter])
            if self.fuse_adapters:
                self.pipe.fuse_lora(components=["unet"], adapter_names=[adapter])
                self._fused = True
        self._active = adapter

    def _unfuse(self) -> None:
        if not self._fused:
            return
        self.pipe.unfuse_lora(components=["unet"])
        for layer, weight in self._base_weights.values():  # unfusing subtracts: undo its rounding
            layer.weight.data.copy_(weight)
        self._fused = False

    @torch.inference_mode()
    def generate(
        self,
        prompt: str,
        seeds: Sequence[int],
        adapter: str | None = None,
        steps: int = 20,
        guidance: float = 5.0,
        negative_prompt: str = "",
        progress: ProgressCallback | None = None,
    ) -> list[Image.Image]:
        """One image per seed. Same prompt, seed and device → identical pixels, batched or not."""
        with self._lock:
            return self._generate(prompt, seeds, adapter, steps, guidance, negative_prompt, progress)

    @contextlib.contextmanager
    def _sampling(self, adapter: str | None, guidance: float):
        """What every sampling call runs under: the bare base's unconditional for an adapter guided against it, and
        bf16 autocast by the generator's own decision (a forced cpu_bf16=True holds on any CPU)."""
        guided_by_base = adapter in self.base_guided and guidance > 1
        guide = unconditional_from(self.pipe.unet, self.bare_unet) if guided_by_base else contextlib.nullcontext()
        bf16 = torch.autocast("cpu", dtype=torch.bfloat16) if self.cpu_bf16 else contextlib.nullcontext()
        with guide, bf16:
            yield

    @torch.inference_mode()
    def edit(
        self,
        images: Sequence[Image.Image],
        prompt: str,
        seeds: Sequence[int],
        adapter: str | None,
        strength: float,
        steps: int = 20,
        guidance: float = 5.0,
        negative_prompt: str = "",
    ) -> list[Image.Image]:
        """SDEdit (Meng et al. 2022): each image noised to `strength` of the schedule (0 keeps it, 1 draws anew) and
        denoised with this prompt and adapter, by diffusers' image-to-image pipeline on the same loaded components.
        One image per seed, image i with seed i; the same seed gives the same pixels."""
        with self._lock:
            self.use_adapter(adapter)
            if self._img2img is None:  # shares the UNet, VAE, text encoder and scheduler: no weights are copied
                self._img2img = StableDiffusionImg2ImgPipeline.from_pipe(self.pipe)
                self._img2img.set_progress_bar_config(disable=True)
            with self._sampling(adapter, guidance):
                output = self._img2img(
                    prompt=[prompt] * len(images),
                    image=[image.convert("RGB") for image in images],
                    strength=strength,
                    negative_prompt=[negative_prompt] * len(images) if guidance > 1 else None,
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    generator=[torch.Generator("cpu").manual_seed(int(s)) for s in seeds],
                    output_type="pil",
                )
            return output.images

    def _generate(self, prompt, seeds, adapter, steps, guidance, negative_prompt, progress) -> list[Image.Image]:
        self.use_adapter(adapter)
        images: list[Image.Image] = []
        total = len(seeds) * steps
        for start in range(0, len(seeds), self.max_batch):
            chunk = list(seeds[start : start + self.max_batch])
            # one generator per image: its initial noise depends on its own seed only
            generators = [torch.Generator("cpu").manual_seed(int(s)) for s in chunk]
            done = start * steps

            def on_step(pipe, step, timestep, kwargs, done=done, n=len(chunk)):
                if progress is not None:
                    progress(done + (step + 1) * n, total)
                return kwargs

            with self._sampling(adapter, guidance):
                output = self.pipe(
                    prompt=[prompt] * len(chunk),
                    negative_prompt=[negative_prompt] * len(chunk) if guidance > 1 else None,
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    generator=generators,
                    output_type="pil",
                    callback_on_step_end=on_step,
                )
            images.extend(output.images)
        return images
