"""Training captions from metadata, phrased the way users will prompt.

Captions are built with the same prompt builder the app uses (registry templates and
attribute phrases), with a random subset of attributes in random order, a random template,
and the free-text columns (grader keywords, findings, clinical notes) as findings, so that
both structured prompts and free-text findings land in the training distribution.
"""

from __future__ import annotations

import random
from typing import Any, Mapping

from medsynth.generation.prompts import PromptError, build_prompt
from medsynth.registry import Domain

MAX_NOTE_CHARS = 160
MISSING = ("", "unknown", "nan")


def _usable_attributes(domain: Domain, row: Mapping[str, Any]) -> dict[str, str]:
    """The row's metadata values that are valid attribute values of the domain (registry: captions.attributes)."""
    usable = {}
    for column, name in domain.captions.attributes.items():
        value = str(row.get(column, "") or "").strip()
        if value.lower() in MISSING:
            continue
        attribute = domain.get_attribute(name)
        try:
            usable[name] = attribute.check(value if attribute.choices else int(float(value)))
        except ValueError:
            continue  # a value outside the attribute's choices or range
    return usable


def _findings(domain: Domain, row: Mapping[str, Any], class_name: str, rng: random.Random) -> str | None:
    """Free text from the registry's caption columns: findings always, notes half of the time, phrases sometimes."""
    columns = domain.captions
    parts = []
    for column in columns.findings:
        text = str(row.get(column, "") or "").replace("，", ", ").strip()
        if text and text.lower() not in ("no finding", class_name.lower()):
            parts.append(text)
    for column in columns.notes:
        notes = " ".join(str(row.get(column, "") or "").split())
        if notes and rng.random() < 0.5:
            parts.append(notes[:MAX_NOTE_CHARS].rsplit(" ", 1)[0] if len(notes) > MAX_NOTE_CHARS else notes)
    for column, phrases in columns.phrases.items():
        phrase = phrases.get(str(row.get(column, "")).strip())
        if phrase and rng.random() < 0.3:
            parts.append(phrase)
    return ", ".join(parts) or None


CAPTION_SCOPES = ("findings", "shuffled")


def check_caption_scope(scope: str) -> str:
    if scope not in CAPTION_SCOPES:
        raise ValueError(f"caption scope must be one of {', '.join(CAPTION_SCOPES)}; got {scope!r}")
    return scope


def caption_for(domain: Domain, row: Mapping[str, Any], rng: random.Random, keep_attribute: float = 0.5) -> str:
    """One randomly phrased caption for a metadata row."""
    label = row["label"]
    attributes = _usable_attributes(domain, row)
    chosen = [name for name in attributes if rng.random() < keep_attribute]
    rng.shuffle(chosen)
    findings = _findings(domain, row, domain.get_class(label).name, rng) if rng.random() < 0.7 else None
    template = rng.randrange(len(domain.prompt_templates))
    try:
        return build_prompt(domain, label, {name: attributes[name] for name in chosen}, findings, template)
    except PromptError:
        return build_prompt(domain, label, {}, None, template)
