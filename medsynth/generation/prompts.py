"""Prompt building and checks: structured fields to text, free-text findings, token limits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Protocol

from medsynth.registry import Domain

MAX_FINDINGS_CHARS = 2000


class PromptError(ValueError):
    """The prompt input cannot be used; the message says why."""


class Tokenizer(Protocol):
    model_max_length: int

    def __call__(self, text: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class PromptCheck:
    prompt: str
    n_tokens: int
    max_tokens: int
    cut_text: str = ""  # the part of the prompt the encoder will not see

    @property
    def warning(self) -> str | None:
        if not self.cut_text:
            return None
        return (
            f"prompt is {self.n_tokens} tokens, the text encoder reads {self.max_tokens}; "
            f'this part will be ignored: "{_quote(self.cut_text)}"'
        )


def _quote(text: str, limit: int = 80) -> str:
    """The start of a long piece of text: a warning quotes what is cut, not a page of it."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def clean_findings(findings: Any) -> str | None:
    """Validate free text: None/blank gives None; non-text or oversize raises PromptError."""
    if findings is None:
        return None
    if not isinstance(findings, str):
        raise PromptError(f"findings must be text, got {type(findings).__name__}")
    text = " ".join(findings.split())
    if len(text) > MAX_FINDINGS_CHARS:
        raise PromptError(f"findings are {len(text)} characters long; the limit is {MAX_FINDINGS_CHARS}")
    if text and not any(ch.isalpha() for ch in text):
        raise PromptError("findings must contain words, not only digits or symbols")
    return text or None


def render_attributes(domain: Domain, attributes: Mapping[str, Any] | None) -> str:
    phrases = []
    for name, value in (attributes or {}).items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            phrases.append(domain.get_attribute(name).render(value))
        except (KeyError, ValueError) as error:
            raise PromptError(str(error)) from None
    return "".join(f", {p}" for p in phrases)


def class_prompt(domain: Domain, code: str, template_index: int = 0) -> str:
    """The plain prompt for one class, used for CLIP class ranking and zero-shot."""
    template = domain.prompt_templates[template_index % len(domain.prompt_templates)]
    return template.format(class_name=domain.get_class(code).name, attributes="", modality=domain.modality)


def build_prompt(
    domain: Domain,
    label: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    findings: Any = None,
    template_index: int = 0,
) -> str:
    """Structured fields (class and attributes) and/or free-text findings → one prompt.

    With a class, findings extend the structured prompt; without one, the findings are the
    prompt, led by the domain's modality unless they name it themselves: the chosen domain
    decides what kind of image is made, whatever the text says.
    """
    text = clean_findings(findings)
    if label is None or (isinstance(label, str) and not label.strip()):
        if attributes and any(v not in (None, "") for v in attributes.values()):
            raise PromptError("attributes need a class: pick a disease, or describe everything in the findings")
        if text is None:
            raise PromptError("give a class or some findings text: the prompt is empty")
        return text if names_modality(domain, text) else f"{domain.modality}, {text}"
    try:
        info = domain.get_class(label)
    except KeyError as error:
        raise PromptError(str(error)) from None
    template = domain.prompt_templates[template_index % len(domain.prompt_templates)]
    prompt = template.format(
        class_name=info.name, attributes=render_attributes(domain, attributes), modality=domain.modality
    )
    return f"{prompt}, {text}" if text else prompt


def _mentions(term: str, text: str) -> bool:
    return re.search(r"\b" + re.escape(term), text.lower()) is not None


def names_modality(domain: Domain, text: str) -> bool:
    """Does free text name the domain's own modality (its registry terms, or the modality itself)?"""
    return any(_mentions(term, text) for term in (*domain.modality_terms, domain.modality.lower()))


def foreign_modality_warning(domains: Iterable[Domain], domain: Domain, findings: Any) -> str | None:
    """A warning when free text names another domain's modality: the chosen domain's model still draws its own."""
    if not isinstance(findings, str) or not findings.strip():
        return None
    others = [d for d in domains if d.name != domain.name and any(_mentions(t, findings) for t in d.modality_terms)]
    if not others:
        return None
    named = ", ".join(f"{d.display_name} ({d.modality})" for d in others)
    return (
        f"the findings name another modality ({named}); the {domain.display_name} model makes {domain.modality} "
        "images whatever the text says: choose that domain to draw it"
    )


def check_prompt_length(prompt: str, tokenizer: Tokenizer) -> PromptCheck:
    """Count tokens as the pipeline's tokenizer does and quote what would be cut."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise PromptError("the prompt is empty")
    max_tokens = int(tokenizer.model_max_length)
    content = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    n_special = len(tokenizer("", add_special_tokens=True)["input_ids"])  # e.g. [CLS]/[SEP], <sot>/<eot>
    n_tokens = len(content) + n_special
    if n_tokens <= max_tokens:
        return PromptCheck(prompt, n_tokens, max_tokens)
    cut_text = tokenizer.decode(content[max_tokens - n_special :], skip_special_tokens=True).strip()
    return PromptCheck(prompt, n_tokens, max_tokens, cut_text or "…")
