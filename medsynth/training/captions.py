"""Training captions from metadata, phrased the way users will prompt.

Captions are built with the same prompt builder the app uses (registry templates and
attribute phrases), with a random subset of attributes in random order, a random template,
and the free-text columns (grader keywords, findings, clinical notes) as findings, so that
both structured prompts and free-text findings land in the training distribution.
"""

from __future__ import annotations

import random
from typing import Any, Mapping

from ..prompts import PromptError, build_prompt
from ..registry import Domain

# metadata column → registry attribute of the same meaning
ATTRIBUTE_COLUMNS = {"site": "site", "age": "age", "sex": "sex", "eye": "eye", "view": "view"}
CONFIRMATION = {
    "histo": "confirmed by histopathology",
    "follow_up": "confirmed by follow-up",
    "consensus": "expert consensus diagnosis",
    "confocal": "confirmed by confocal microscopy",
}
MAX_NOTE_CHARS = 160


def _usable_attributes(domain: Domain, row: Mapping[str, Any]) -> dict[str, str]:
    usable = {}
    for column, name in ATTRIBUTE_COLUMNS.items():
        value = str(row.get(column, "") or "").strip()
        if not value or value.lower() in ("unknown", "nan"):
            continue
        try:
            attribute = domain.get_attribute(name)
            usable[name] = attribute.check(int(float(value)) if name == "age" else value)
        except (KeyError, ValueError):
            continue  # not an attribute of this domain, or a value outside its choices
    return usable


def _findings(row: Mapping[str, Any], class_name: str, rng: random.Random) -> str | None:
    parts = []
    keywords = str(row.get("keywords", "") or "").replace("，", ", ").strip()
    if keywords and keywords.lower() != class_name.lower():
        parts.append(keywords)
    finding = str(row.get("finding", "") or "").strip()
    if finding and finding.lower() not in ("no finding", class_name.lower()):
        parts.append(finding)
    notes = " ".join(str(row.get("notes", "") or "").split())
    if notes and rng.random() < 0.5:
        parts.append(notes[:MAX_NOTE_CHARS].rsplit(" ", 1)[0] if len(notes) > MAX_NOTE_CHARS else notes)
    confirmed = CONFIRMATION.get(str(row.get("confirmed_by", "")).strip())
    if confirmed and rng.random() < 0.3:
        parts.append(confirmed)
    return ", ".join(parts) or None


def caption_for(domain: Domain, row: Mapping[str, Any], rng: random.Random, keep_attribute: float = 0.5) -> str:
    """One randomly phrased caption for a metadata row."""
    label = row["label"]
    attributes = _usable_attributes(domain, row)
    chosen = [name for name in attributes if rng.random() < keep_attribute]
    rng.shuffle(chosen)
    findings = _findings(row, domain.get_class(label).name, rng) if rng.random() < 0.7 else None
    template = rng.randrange(len(domain.prompt_templates))
    try:
        return build_prompt(domain, label, {name: attributes[name] for name in chosen}, findings, template)
    except PromptError:
        return build_prompt(domain, label, {}, None, template)
