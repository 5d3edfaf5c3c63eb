"""The engine: owns the loaded models of one pack and turns a GenerationRequest into scored images.

UI, CLI and studies all go through MedSynth.run, so there is one way to generate.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from PIL import Image

from medsynth import __version__
from medsynth.generation.pipeline import Generator, GeneratorLoadError, ProgressCallback
from medsynth.generation.prompts import (
    PromptError,
    build_prompt,
    check_prompt_length,
    class_prompt,
    foreign_modality_warning,
)
from medsynth.generation.provenance import png_bytes
from medsynth.generation.scoring import AlignmentScore, ClassifierScore, ClassifierScorer, ClipScorer
from medsynth.generation.validation import Attempt, validate_loop
from medsynth.registry import Availability, Domain, Registry

logger = logging.getLogger(__name__)

MAX_IMAGES = 64
STEPS_RANGE = (1, 150)
GUIDANCE_RANGE = (0.0, 30.0)
MAX_ROUNDS = 10
MAX_SEED = 2**32 - 1


class RequestError(ValueError):
    """The request cannot be served as asked; the message is meant for the user."""


class PackUnavailableError(RuntimeError):
    """The selected model pack cannot be loaded; the message says why and how to get it."""


@dataclass(frozen=True)
class GenerationRequest:
    domain: str
    label: str | None = None
    findings: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    n: int = 4
    seed: int | None = None  # None: a random seed, reported back in the result
    steps: int | None = None  # None: the pack's default
    guidance: float | None = None
    validate: bool = False
    max_rounds: int = 3
    threshold: float | None = None  # None: each class's typical confidence on real val images (Acceptance)
    use_adapter: bool = True  # False: the bare shared base, for comparison
    template_index: int = 0

    def check(self) -> None:
        """Raise RequestError naming the first out-of-range field."""
        check_whole_number("n", self.n, 1, MAX_IMAGES)
        if self.seed is not None:
            check_whole_number("seed", self.seed, 0, MAX_SEED)
        if self.steps is not None:
            check_whole_number("steps", self.steps, *STEPS_RANGE)
        if self.guidance is not None:
            low, high = GUIDANCE_RANGE
            if not isinstance(self.guidance, (int, float)) or not low <= float(self.guidance) <= high:
                raise RequestError(f"guidance must be a number between {low:g} and {high:g}; got {self.guidance!r}")
        check_whole_number("max_rounds", self.max_rounds, 1, MAX_ROUNDS)
        if self.threshold is not None and (
            not isinstance(self.threshold, (int, float)) or not 0.0 <= self.threshold <= 1.0
        ):
            raise RequestError(f"threshold must be between 0 and 1; got {self.threshold!r}")
        if self.validate and not self.label:
            raise RequestError("validation needs a class to check against: pick a disease (label)")


def check_whole_number(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name} must be a whole number; got {value!r}")
    if not low <= value <= high:
        raise RequestError(f"{name} must be between {low} and {high}; got {value}")


def resolve_domain(
    registry: Registry, pack: str, name: str, availability: Mapping[str, Availability] | None = None
) -> Domain:
    """The domain called `name`, or RequestError saying it is unknown or why it is unavailable."""
    try:
        domain = registry.get_domain(name)
    except KeyError as error:
        raise RequestError(str(error)) from None
    status = (availability or registry.domain_availability(pack))[domain.name]
    if not status.available:
        raise RequestError(f"domain {domain.name} is unavailable in pack {pack}: {status.reason}")
    return domain


def check_request(registry: Registry, pack: str, request: GenerationRequest, availability=None) -> Domain:
    """All checks that need no loaded model: numbers, domain, class, attributes. Cheap; run first."""
    request.check()
    domain = resolve_domain(registry, pack, request.domain, availability)
    try:
        build_prompt(domain, request.label, request.attributes, request.findings, request.template_index)
    except PromptError as error:
        raise RequestError(str(error)) from None
    return domain


@dataclass(frozen=True)
class SyntheticImage:
    image: Image.Image  # raw pixels, without the visible mark
    seed: int
    round: int
    accepted: bool | None  # classifier agrees with the requested class (None: no class requested)
    classifier: ClassifierScore | None
    alignment: AlignmentScore | None
    record: dict[str, Any]  # provenance, written into the PNG

    def png(self, mark: bool = True) -> bytes:
        return png_bytes(self.image, self.record, mark=mark)


@dataclass(frozen=True)
class GenerationResult:
    request: GenerationRequest
    prompt: str
    seed: int
    steps: int
    guidance: float
    images: list[SyntheticImage]  # what the user gets: accepted ones when validating
    attempts: list[SyntheticImage]  # every image generated, in order
    rounds: int
    warnings: list[str]
    elapsed_s: float

    @property
    def acceptance_rate(self) -> float | None:
        judged = [a.accepted for a in self.attempts if a.accepted is not None]
        return sum(judged) / len(judged) if judged else None


class MedSynth:
    """Loads one pack (base pipeline, every available domain's adapter, classifier, CLIP) once."""

    def __init__(self, registry: Registry, pack: str, device: str | None = None) -> None:
        self.registry = registry
        self.pack = registry.get_pack(pack)
        reason = self.pack.missing_reason()
        if reason:
            raise PackUnavailableError(f"model pack '{pack}' is unavailable: {reason}")
        started = time.perf_counter()
        try:
            self.generator = Generator(self.pack.base, self.pack.text_encoder, device=device)
        except GeneratorLoadError as error:
            raise PackUnavailableError(f"model pack '{pack}' is unavailable: {error}") from error
        self.device = self.generator.device
        self.availability: dict[str, Availability] = registry.domain_availability(pack)
        self.classifiers: dict[str, ClassifierScorer] = {}
        self.clips: dict[str, ClipScorer] = {}
        loaded_clips: dict[str, ClipScorer] = {}  # domains often share one CLIP model
        for name, status in self.availability.items():
            if not status.available:
                continue
            sources = registry.get_domain(name).sources_for(pack)
            try:
                self.generator.add_adapter(name, sources.adapter, base_unconditional=sources.base_unconditional)
                self.classifiers[name] = ClassifierScorer.from_source(sources.classifier, self.device)
                if sources.clip.spec not in loaded_clips:
                    loaded_clips[sources.clip.spec] = ClipScorer.from_source(sources.clip, self.device)
                self.clips[name] = loaded_clips[sources.clip.spec]
            except Exception as error:  # one broken domain must not take the others down
                logger.warning("domain %s unavailable: %s", name, error)
                self.availability[name] = Availability(False, f"failed to load: {error}")
                self.classifiers.pop(name, None)
        self.load_seconds = time.perf_counter() - started

    @property
    def available_domains(self) -> list[str]:
        return [name for name, status in self.availability.items() if status.available]

    def domain(self, name: str) -> Domain:
        return resolve_domain(self.registry, self.pack.name, name, self.availability)

    def prepare_prompt(self, request: GenerationRequest) -> tuple[str, list[str]]:
        """The prompt text for a request, and warnings (e.g. what the text encoder will cut)."""
        domain = self.domain(request.domain)
        try:
            prompt = build_prompt(domain, request.label, request.attributes, request.findings, request.template_index)
            check = check_prompt_length(prompt, self.generator.tokenizer)
        except PromptError as error:
            raise RequestError(str(error)) from None
        foreign = foreign_modality_warning(self.registry.domains.values(), domain, request.findings)
        return prompt, [w for w in (foreign, check.warning) if w]

    def run(
        self,
        request: GenerationRequest,
        progress: ProgressCallback | None = None,
        on_round: Callable[[int], None] | None = None,
    ) -> GenerationResult:
        started = time.perf_counter()
        domain = check_request(self.registry, self.pack.name, request, self.availability)
        label = domain.get_class(request.label).code if request.label else None
        prompt, warnings = self.prepare_prompt(request)
        seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        steps = request.steps or self.pack.default_steps
        default_guidance = self.registry.default_guidance(self.pack.name, domain.name)
        guidance = float(default_guidance if request.guidance is None else request.guidance)
        adapter = domain.name if request.use_adapter else None
        classifier = self.classifiers[domain.name]

        def generate(seeds: list[int]) -> list[Image.Image]:
            if on_round is not None:
                on_round(len(seeds))
            images = self.generator.generate(
                prompt, seeds, adapter, steps, guidance, self.pack.negative_prompt, progress
            )
            # a grey modality is single-channel from here on: scores, files, exports and studies alike
            return [image.convert("L") for image in images] if domain.grey else images

        acceptance = classifier.acceptance(label, request.threshold) if label else None
        if request.validate:
            outcome = validate_loop(generate, classifier.score, acceptance, request.n, seed, request.max_rounds)
            attempts, rounds = outcome.attempts, outcome.rounds
        else:
            seeds = list(range(seed, seed + request.n))
            images = generate(seeds)
            attempts = [
                Attempt(image, s, 1, score, acceptance.accepts(score) if acceptance else None)
                for image, s, score in zip(images, seeds, classifier.score(images))
            ]
            rounds = 1

        class_prompts = {c.code: class_prompt(domain, c.code, request.template_index) for c in domain.classes}
        alignments = self.clips[domain.name].score(
            [a.image for a in attempts], prompt, class_prompts, label, domain.name
        )
        info = self.generator.info(adapter)
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        synthetic = []
        for attempt, alignment in zip(attempts, alignments):
            record = {
                "prompt": prompt,
                "negative_prompt": self.pack.negative_prompt,
                "seed": attempt.seed,
                "domain": domain.name,
                "label": label,
                "pack": self.pack.name,
                "base": info.base,
                "adapter": info.adapter,
                "scheduler": info.scheduler,
                "steps": steps,
                "guidance": guidance,
                "guidance_unconditional": info.unconditional,
                "device": info.device,
                "resolution": f"{attempt.image.width}x{attempt.image.height}",
                "round": attempt.round,
                "accepted": attempt.accepted,
                # what "accepted" asked of the classifier: the probability of the class, and why that much
                "threshold": round(acceptance.bar, 4) if acceptance else None,
                "acceptance": acceptance.rule if acceptance else None,
                "scores": {
                    "predicted": attempt.score.predicted,
                    "confidence": round(attempt.score.confidence, 4),
                    "probabilities": {k: round(v, 4) for k, v in attempt.score.probabilities.items()},
                    "clip_cosine": round(alignment.cosine, 4),
                    "clip_rank": alignment.rank,
                    "clip_percentile": None if alignment.percentile is None else round(alignment.percentile, 1),
                },
                "created": created,
                "software": f"medsynth {__version__}",
            }
            synthetic.append(
                SyntheticImage(
                    attempt.image, attempt.seed, attempt.round, attempt.accepted, attempt.score, alignment, record
                )
            )
        kept = [s for s in synthetic if s.accepted] if request.validate else synthetic
        if request.validate and len(kept) < request.n:
            warnings.append(
                f"only {len(kept)} of {request.n} images passed validation in {rounds} round(s); "
                "lower the threshold or allow more rounds"
            )
        return GenerationResult(
            request, prompt, seed, steps, guidance, kept, synthetic, rounds, warnings, time.perf_counter() - started
        )
