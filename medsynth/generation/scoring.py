"""Scorers: does the domain classifier see the asked-for class, and how well do image and text align."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from medsynth.models.classifier import ClassifierConfig, load_classifier, preprocess
from medsynth.models.clip import LoadedClip, load_clip
from medsynth.registry import Source


@dataclass(frozen=True)
class ClassifierScore:
    probabilities: dict[str, float]  # temperature-calibrated, sums to 1
    predicted: str
    confidence: float  # calibrated probability of the predicted class

    def probability(self, code: str) -> float:
        return self.probabilities.get(code, 0.0)

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        return sorted(self.probabilities.items(), key=lambda kv: kv[1], reverse=True)[:k]

    def agrees_with(self, code: str, threshold: float = 0.0) -> bool:
        return self.predicted == code and self.confidence >= threshold


@dataclass(frozen=True)
class AlignmentScore:
    cosine: float  # cosine similarity of image and prompt embeddings
    rank: int | None = None  # 1 = the requested class's prompt is the closest of all class prompts
    n_classes: int | None = None
    class_cosine: float | None = None  # cosine with the plain prompt of the requested class
    percentile: float | None = None  # where class_cosine falls among real images of that class (0-100)


FALLBACK_BAR = 0.5  # a classifier saved before it kept its classes' typical confidence


@dataclass(frozen=True)
class Acceptance:
    """When the validation loop keeps an image asked to show `code`: by default when the classifier's probability of
    the class reaches the class's typical probability on real val images of it (`per_class`); with a fixed bar, when
    the class is predicted at that confidence or more."""

    code: str
    bar: float
    per_class: bool

    def accepts(self, score: ClassifierScore) -> bool:
        return score.probability(self.code) >= self.bar if self.per_class else score.agrees_with(self.code, self.bar)

    @property
    def rule(self) -> str:
        return "the class's median on real val images" if self.per_class else "a fixed confidence"


class ClassifierScorer:
    def __init__(self, model: torch.nn.Module, config: ClassifierConfig, device: str | torch.device = "cpu") -> None:
        self.model, self.config, self.device = model, config, torch.device(device)

    @classmethod
    def from_source(cls, source: Source, device: str | torch.device = "cpu") -> "ClassifierScorer":
        if source.is_hub:
            from huggingface_hub import snapshot_download

            folder = snapshot_download(source.hub_id)
        else:
            folder = source.path
        model, config = load_classifier(folder, device)
        return cls(model, config, device)

    @property
    def classes(self) -> list[str]:
        return list(self.config.classes)

    def acceptance(self, code: str, threshold: float | None = None) -> Acceptance:
        """The validation rule for images of `code`: a fixed `threshold`, or with None the class's own bar."""
        if threshold is not None:
            return Acceptance(code, float(threshold), per_class=False)
        bar = self.config.class_thresholds.get(code)
        return Acceptance(code, bar, per_class=True) if bar is not None else Acceptance(code, FALLBACK_BAR, False)

    @torch.inference_mode()
    def logits(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return self.model(preprocess(images, self.config).to(self.device)).float().cpu()

    def score(self, images: Sequence[Image.Image]) -> list[ClassifierScore]:
        if not images:
            return []
        probs = torch.softmax(self.logits(images) / self.config.temperature, dim=1)
        scores = []
        for row in probs.tolist():
            best = max(range(len(row)), key=row.__getitem__)
            scores.append(ClassifierScore(dict(zip(self.config.classes, row)), self.config.classes[best], row[best]))
        return scores


class ClipScorer:
    def __init__(self, clip: LoadedClip, device: str | torch.device = "cpu") -> None:
        self.clip, self.device = clip, torch.device(device)

    @classmethod
    def from_source(cls, source: Source, device: str | torch.device = "cpu") -> "ClipScorer":
        return cls(load_clip(source, device), device)

    @torch.inference_mode()
    def embed_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        batch = torch.stack([self.clip.preprocess(image.convert("RGB")) for image in images]).to(self.device)
        return torch.nn.functional.normalize(self.clip.model.encode_image(batch).float(), dim=-1).cpu()

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.clip.tokenizer(list(texts)).to(self.device)
        return torch.nn.functional.normalize(self.clip.model.encode_text(tokens).float(), dim=-1).cpu()

    def percentile(self, domain: str | None, code: str, cosine: float) -> float | None:
        """Percentile of `cosine` among real images of the class (None without a reference)."""
        values = ((self.clip.reference or {}).get(domain or "", {}) or {}).get(code)
        if not values:
            return None
        percents = [100 * i / (len(values) - 1) for i in range(len(values))]
        return float(np.interp(cosine, values, percents))

    def score(
        self,
        images: Sequence[Image.Image],
        prompt: str,
        class_prompts: Mapping[str, str] | None = None,
        requested: str | None = None,
        domain: str | None = None,
    ) -> list[AlignmentScore]:
        """Cosine of each image with the prompt; with class prompts, the requested class's rank."""
        if not images:
            return []
        image_emb = self.embed_images(images)
        cosines = (image_emb @ self.embed_texts([prompt]).T).squeeze(1).tolist()
        if not class_prompts or requested is None:
            return [AlignmentScore(c) for c in cosines]
        codes = list(class_prompts)
        class_sims = image_emb @ self.embed_texts([class_prompts[c] for c in codes]).T
        target = codes.index(requested)
        ranks = (class_sims > class_sims[:, target : target + 1]).sum(dim=1) + 1
        own = class_sims[:, target].tolist()
        return [
            AlignmentScore(c, int(r), len(codes), o, self.percentile(domain, requested, o))
            for c, r, o in zip(cosines, ranks.tolist(), own)
        ]
