"""Score cards: what the classifier and CLIP saw in one synthetic image, in words a trainee can use."""

from __future__ import annotations

from medsynth.generation.engine import SyntheticImage
from medsynth.registry import Domain
from medsynth.ui.text import ordinal, plain


def class_label(domain: Domain, code: str) -> str:
    return f"{domain.get_class(code).name} ({code})"


def probabilities(domain: Domain, image: SyntheticImage, k: int = 3) -> dict[str, float]:
    """Top-k calibrated class probabilities, keyed by readable class names (for gr.Label bars)."""
    if image.classifier is None:
        return {}
    return {class_label(domain, code): round(p, 4) for code, p in image.classifier.top(k)}


def alignment_meaning(image: SyntheticImage) -> str:
    alignment = image.alignment
    if alignment is None:
        return "not measured"
    parts = [f"cosine {alignment.cosine:.3f} with the prompt"]
    if alignment.rank is not None:
        verdict = "the closest match" if alignment.rank == 1 else f"ranked {alignment.rank} of {alignment.n_classes}"
        parts.append(f"the asked-for class prompt is {verdict} among this domain's classes")
    if alignment.percentile is not None:
        parts.append(
            f"as typical as the {ordinal(round(alignment.percentile))} percentile of real images of this class"
        )
    return "; ".join(parts)


def score_card(domain: Domain, image: SyntheticImage, attempts: int | None = None) -> str:
    """Markdown card for one image."""
    record = image.record
    lines = [f"**Seed** `{image.seed}` · **prompt:** {plain(record['prompt'])}"]
    score = image.classifier
    if score is not None:
        seen = class_label(domain, score.predicted)
        lines.append(f"**Classifier sees:** {seen}, calibrated confidence {score.confidence:.0%}")
        if record.get("label"):
            asked = class_label(domain, record["label"])
            needed = record.get("threshold")
            rule = record.get("acceptance")
            why = f" ({rule})" if rule and "median" in rule else ""
            bar = f"; {needed:.0%} needed{why}" if needed is not None else ""
            probability = score.probability(record["label"])
            # the opinion of one small classifier at a stated confidence, not a diagnosis
            if image.accepted:
                lines.append(f"✅ In the classifier's opinion this shows {asked} ({probability:.0%}{bar})")
            else:
                lines.append(f"⚠️ The classifier is not confident this shows {asked} ({probability:.0%}{bar})")
    lines.append(f"**CLIP alignment:** {alignment_meaning(image)}")
    if attempts is not None:
        lines.append(f"**Attempts:** generated in round {image.round}; {attempts} image(s) generated for this request")
    return "\n\n".join(lines)
