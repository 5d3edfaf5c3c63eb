"""Domain and model-pack registry: a TOML data file loaded into typed dataclasses.

A domain is data: its classes, prompt templates, optional attributes, which metadata columns
feed training captions, whether a mirror image is still valid, its data source and licence,
and, per model pack, the sources of its LoRA adapter, classifier and CLIP model. Adding a
domain means adding an entry and its trained files; no Python changes.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from medsynth.paths import EMBEDDED_PACK, PACK_ENV, domain_folder, registry_path

HUB_PREFIX = "hf-hub:"
PACKAGE_PREFIX = "pkg:"  # a model folder shipped inside an installed Python package


class RegistryError(ValueError):
    """The registry file is malformed; the message names the bad field."""


class UnknownNameError(KeyError):
    """An unknown domain, class, attribute or pack; str() is the plain message (KeyError quotes it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Source:
    """Where a model comes from: a local folder or a Hugging Face Hub id."""

    spec: str
    path: Path | None = None  # set for local sources
    hub_id: str | None = None  # set for hub sources
    package: str | None = None  # set for package sources

    @classmethod
    def parse(cls, spec: str, root: Path) -> "Source":
        if spec.startswith(PACKAGE_PREFIX):
            return cls(spec=spec, package=spec[len(PACKAGE_PREFIX) :].strip())
        if spec.startswith(HUB_PREFIX):
            hub_id = spec[len(HUB_PREFIX) :].strip()
            if hub_id.count("/") != 1:
                raise RegistryError(f"hub source {spec!r} must look like 'hf-hub:owner/name'")
            return cls(spec=spec, hub_id=hub_id)
        path = Path(spec)
        return cls(spec=spec, path=path if path.is_absolute() else root / path)

    @property
    def is_hub(self) -> bool:
        return self.hub_id is not None

    @property
    def location(self) -> str:
        """What a from_pretrained-style loader takes: a folder path or a hub id."""
        if self.package:
            return str(package_model_folder(self.package))
        return self.hub_id if self.is_hub else str(self.path)

    def missing_reason(self) -> str | None:
        """Why this source cannot be used, or None. Hub sources are resolved at load time."""
        if self.package:
            if importlib.util.find_spec(self.package) is None:
                return f"Python package {self.package} is not installed (pip install -r requirements.txt)"
            return None
        if self.is_hub:
            return None
        if not self.path.exists():
            return f"{self.path} not found"
        return None


def package_model_folder(package: str) -> Path:
    """The model folder inside an installed package: its get_model_path(), or <package>/model."""
    module = importlib.import_module(package)
    getter = getattr(module, "get_model_path", None)
    return Path(getter()) if getter else Path(module.__file__).parent / "model"


@dataclass(frozen=True)
class ClassInfo:
    code: str
    name: str
    description: str
    rare: bool = False  # a minority class: where synthetic augmentation is supposed to help


@dataclass(frozen=True)
class Attribute:
    """An optional prompt attribute: a choice list or an integer range."""

    name: str
    label: str
    phrase: str  # e.g. "on the {value}"
    choices: tuple[str, ...] = ()
    min: int | None = None
    max: int | None = None

    def check(self, value: Any) -> str:
        """Return the value as prompt text or raise ValueError naming the attribute."""
        if self.choices:
            text = str(value).strip()
            for choice in self.choices:
                if text.lower() == choice.lower():
                    return choice
            raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}; got {value!r}")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"{self.name} must be a whole number; got {value!r}") from None
        if not (self.min <= number <= self.max):
            raise ValueError(f"{self.name} must be between {self.min} and {self.max}; got {number}")
        return str(number)

    def render(self, value: Any) -> str:
        return self.phrase.format(value=self.check(value))


@dataclass(frozen=True)
class DomainSources:
    """The models one domain uses in one pack."""

    adapter: Source | None = None
    classifier: Source | None = None
    clip: Source | None = None
    unavailable: str | None = None  # a curator's reason, e.g. "too little data"
    # guide this domain's LoRA against the bare base's unconditional prediction (see Generator.add_adapter)
    base_unconditional: bool = False
    # the classifier's real accuracy at least this share of an ImageNet-initialised probe's on the same split
    # (evaluate-pack --probes): a bar the data allow, unlike a fixed accuracy
    probe_accuracy_share: float | None = None
    # generated images' evaluator F1 (base + LoRA) at least this share of the same evaluators' F1 on real images
    f1_share_bar: float | None = None
    # this domain's guidance scale where it differs from the pack's default_guidance (chosen on val per adapter)
    guidance: float | None = None

    def missing_reason(self) -> str | None:
        if self.unavailable:
            return self.unavailable
        problems = []
        for role in ("adapter", "classifier", "clip"):
            source = getattr(self, role)
            if source is None:
                problems.append(f"no {role} configured")
            elif (reason := source.missing_reason()) is not None:
                problems.append(f"{role} {reason}")
        return "; ".join(problems) or None


@dataclass(frozen=True)
class CaptionColumns:
    """Which metadata columns of a domain's data feed its training captions, and how."""

    attributes: Mapping[str, str] = field(default_factory=dict)  # metadata column → attribute name, in caption order
    findings: tuple[str, ...] = ()  # free-text columns used whenever they say more than the class name
    notes: tuple[str, ...] = ()  # long free text, used half of the time, cut to a short phrase
    phrases: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # column → {value: phrase}, used sometimes


@dataclass(frozen=True)
class DataSource:
    """Where a domain's real images come from, for model cards."""

    description: str = ""
    licence: str = ""
    folder: Path | None = None  # its images and metadata.csv where not under the data root (a domain a user added)


@dataclass(frozen=True)
class ReferenceFigure:
    """A published figure a domain's generated-image F1 is shown beside (e.g. a paper's on the same data)."""

    value: float
    source: str  # who measured it and how, as the report cites it


@dataclass(frozen=True)
class Domain:
    name: str
    display_name: str
    modality: str
    classes: tuple[ClassInfo, ...]
    prompt_templates: tuple[str, ...]
    attributes: tuple[Attribute, ...] = ()
    sources: Mapping[str, DomainSources] = field(default_factory=dict)
    mirror: bool = False  # a left-right mirror image is still a valid image of the class (training augmentation)
    captions: CaptionColumns = field(default_factory=CaptionColumns)
    source_column: str | None = None  # metadata column naming the collection an image came from (confounds)
    data: DataSource = field(default_factory=DataSource)
    limitations: str = ""  # what a model card must say about this domain's data
    # words that name this modality in free text (lower case; a word's start is enough: "dermoscop")
    modality_terms: tuple[str, ...] = ()
    grey: bool = False  # a greyscale modality: single-channel images everywhere (generation, export, studies)
    crop_margin: float = 0.0  # share of each side that may carry burned-in markers and text (reader studies crop it)
    # the normal or benign class counterfactual pairs start from ("what the disease changes" from a healthy image)
    baseline_class: str | None = None
    # a cue in this domain's data that gives a class away without the finding (the quiz says so on every case)
    shortcut: str = ""
    reference_f1: ReferenceFigure | None = None  # a published generated-image F1 for this domain's data, if any
    defined_in: Path | None = None  # the registry file whose table defines it (the shipped file or the user layer)

    @property
    def class_codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.classes)

    @property
    def rare_classes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.classes if c.rare)

    def get_class(self, code: str) -> ClassInfo:
        for info in self.classes:
            if info.code.lower() == str(code).strip().lower():
                return info
        raise UnknownNameError(
            f"unknown class {code!r} for domain {self.name}; choose one of {', '.join(self.class_codes)}"
        )

    def image_folder(self, root: str | Path | None = None) -> Path:
        """Its real images (images and metadata.csv): the folder the registry names, else `<root>/<name>` under the
        given root or the data root."""
        return self.data.folder or domain_folder(self.name, root)

    def get_attribute(self, name: str) -> Attribute:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        names = ", ".join(a.name for a in self.attributes) or "none"
        raise UnknownNameError(f"unknown attribute {name!r} for domain {self.name}; it has: {names}")

    def sources_for(self, pack: str) -> DomainSources:
        return self.sources.get(pack, DomainSources(unavailable=f"no sources configured for pack {pack!r}"))


@dataclass(frozen=True)
class ModelPack:
    name: str
    description: str
    base: Source
    text_encoder: Source | None = None  # weights kept outside the base folder (e.g. from a package)
    default_steps: int = 20
    default_guidance: float = 5.0
    negative_prompt: str = ""
    model_card: Path | None = None
    train_command: str = ""
    trains: tuple[str, ...] = ()  # the domains this project trains the pack's shared parts on (base, autoencoder, CLIP)
    size_budget_mb: float | None = None  # what the pack's files may weigh (a pack shipped inside the repository)

    def missing_reason(self) -> str | None:
        if self.text_encoder is not None and (reason := self.text_encoder.missing_reason()):
            return f"text encoder: {reason}"
        reason = self.base.missing_reason()
        if reason is None:
            return None
        hint = f" (build it with: {self.train_command})" if self.train_command else ""
        return f"base pipeline {reason}{hint}"


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str = ""


@dataclass(frozen=True)
class Registry:
    path: Path  # the shipped file
    packs: Mapping[str, ModelPack]
    domains: Mapping[str, Domain]
    # the user layer over it, where `medsynth domain add` writes (set when one is named, even before it exists)
    user_path: Path | None = None

    def user_domains(self) -> tuple[str, ...]:
        """The domains the user layer defines (not those it only gives sources to)."""
        return tuple(n for n, d in self.domains.items() if self.user_path and d.defined_in == self.user_path)

    def get_pack(self, name: str) -> ModelPack:
        if name not in self.packs:
            raise UnknownNameError(f"unknown model pack {name!r}; choose one of {', '.join(self.packs)}")
        return self.packs[name]

    def get_domain(self, name: str) -> Domain:
        key = str(name).strip().lower()
        if key not in self.domains:
            raise UnknownNameError(f"unknown domain {name!r}; choose one of {', '.join(self.domains)}")
        return self.domains[key]

    def default_guidance(self, pack: str, domain: str) -> float:
        """The guidance scale a request without one gets: the domain's own in this pack, else the pack's."""
        own = self.get_domain(domain).sources_for(pack).guidance
        return own if own is not None else self.get_pack(pack).default_guidance

    def trained_domains(self, pack: str = EMBEDDED_PACK) -> tuple[str, ...]:
        """The domains whose data trains the pack's shared parts (registry: packs.<pack>.trains)."""
        return self.get_pack(pack).trains

    def pack_availability(self, pack: str) -> Availability:
        reason = self.get_pack(pack).missing_reason()
        return Availability(reason is None, reason or "")

    def domain_availability(self, pack: str) -> dict[str, Availability]:
        """Per domain: can it be used with this pack, and if not, why."""
        self.get_pack(pack)
        result = {}
        for name, domain in self.domains.items():
            reason = domain.sources_for(pack).missing_reason()
            result[name] = Availability(reason is None, reason or "")
        return result


# ----------------------------------------------------------------- loading

# every key each table may hold: anything else is a typo, refused with the closest of these
TABLE_KEYS = {
    "registry": ("packs", "domains"),
    "pack": ("description", "base", "text_encoder", "model_card", "default_steps", "default_guidance",
             "negative_prompt", "train_command", "trains", "size_budget_mb"),
    "domain": ("display_name", "modality", "modality_terms", "mirror", "grey", "crop_margin", "source_column",
               "limitations", "data", "captions", "prompt_templates", "classes", "attributes", "sources",
               "reference_f1", "baseline_class", "shortcut"),
    "class": ("code", "name", "description", "rare"),
    "attribute": ("name", "label", "phrase", "choices", "min", "max"),
    "sources": ("adapter", "classifier", "clip", "unavailable", "base_unconditional", "probe_accuracy_share",
                "f1_share_bar", "guidance"),
    "captions": ("attributes", "findings", "notes", "phrases"),
    "data": ("description", "licence", "folder"),
    "reference_f1": ("value", "source"),
}  # fmt: skip


@dataclass(frozen=True)
class RegistryFile:
    """One TOML file of the registry: its text (to name the line of a bad key) and the folder its paths start from."""

    path: Path
    text: str

    @property
    def root(self) -> Path:
        return self.path.parent

    @classmethod
    def read(cls, path: Path) -> tuple["RegistryFile", dict]:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RegistryError(f"registry file not found: {path}") from None
        try:
            return cls(path, text), tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise RegistryError(f"{path}: not valid TOML ({error})") from None

    def line_of(self, where: str, key: str) -> int | None:
        """The line that sets `key` inside the table `where` (dotted, list indices dropped), when it can be found.

        tomllib keeps no positions, so this reads the text: the key is looked for in the section of the table's
        own header, or of the nearest enclosing header (keys of inline tables and of lists of inline tables)."""
        path = re.sub(r"\[[^\]]*\]", "", where)
        headers, section = {}, ""
        assignment = re.compile(rf"(^|[{{,\s])\"?{re.escape(key)}\"?\s*=")
        found: dict[str, int] = {}
        for number, line in enumerate(self.text.splitlines(), start=1):
            header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$", line)
            if header:
                section = header.group(1).replace('"', "").replace(" ", "")
                headers.setdefault(section, number)
                continue
            if assignment.search(line.split("#", 1)[0]):
                found.setdefault(section, number)
        parts = path.split(".") if path != "registry" else []
        for size in range(len(parts), -1, -1):
            candidate = ".".join(parts[:size])
            if candidate in found and (candidate in headers or size == 0):
                return found[candidate]
        return None


def closest_key(key: str, known: tuple[str, ...]) -> str | None:
    matches = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _check_keys(raw: Mapping[str, Any], kind: str, where: str, source: RegistryFile) -> None:
    """Refuse every key the table may not hold, naming the file, the line where it can be found and the closest key."""
    known = TABLE_KEYS[kind]
    if not isinstance(raw, Mapping):
        raise RegistryError(f"{source.path}: [{where}] must be a table, got {type(raw).__name__}")
    for key in raw:
        if key in known:
            continue
        line = source.line_of(where, key)
        place = f"{source.path}:{line}" if line else str(source.path)
        suggestion = closest_key(key, known)
        hint = f"did you mean `{suggestion}`?" if suggestion else f"known keys: {', '.join(known)}"
        raise RegistryError(f"{place}: unknown key `{key}` in [{where}]: {hint}")


def _require(table: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...] = str) -> Any:
    if key not in table:
        raise RegistryError(f"{where}: missing required field '{key}'")
    value = table[key]
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise RegistryError(f"{where}.{key}: expected {expected}, got {type(value).__name__}")
    if isinstance(value, (str, list)) and not value:
        raise RegistryError(f"{where}.{key}: must not be empty")
    return value


def _parse_attribute(raw: Mapping[str, Any], where: str, source: RegistryFile) -> Attribute:
    _check_keys(raw, "attribute", where, source)
    name = _require(raw, "name", where)
    where = f"{where}[{name}]"
    phrase = _require(raw, "phrase", where)
    if "{value}" not in phrase:
        raise RegistryError(f"{where}.phrase: must contain '{{value}}'")
    if "choices" in raw:
        choices = tuple(str(c) for c in _require(raw, "choices", where, list))
        return Attribute(name, raw.get("label", name), phrase, choices=choices)
    low, high = _require(raw, "min", where, int), _require(raw, "max", where, int)
    if low > high:
        raise RegistryError(f"{where}: min {low} is larger than max {high}")
    return Attribute(name, raw.get("label", name), phrase, min=low, max=high)


def _flag(raw: Mapping[str, Any], key: str, where: str) -> bool:
    """An optional true/false field (TOML booleans only: "yes" or 1 is a mistake, not a truth value)."""
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise RegistryError(f"{where}.{key}: must be true or false, got {value!r}")
    return value


def _parse_sources(raw: Mapping[str, Any], where: str, source: RegistryFile) -> DomainSources:
    _check_keys(raw, "sources", where, source)
    parsed = {
        role: Source.parse(_require(raw, role, where), source.root)
        for role in ("adapter", "classifier", "clip")
        if role in raw
    }
    return DomainSources(
        **parsed, unavailable=raw.get("unavailable"), base_unconditional=_flag(raw, "base_unconditional", where),
        probe_accuracy_share=_share(raw, "probe_accuracy_share", where), f1_share_bar=_share(raw, "f1_share_bar", where),
        guidance=_optional_number(raw, "guidance", where, 1, 30),  # below 1 guidance pushes away from the prompt
    )  # fmt: skip


def _margin(raw: Mapping[str, Any], where: str) -> float:
    value = raw.get("crop_margin", 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 0.25:
        raise RegistryError(f"{where}.crop_margin: must be a share of a side between 0 and 0.25, got {value!r}")
    return float(value)


def _optional_number(
    raw: Mapping[str, Any], key: str, where: str, low: float, high: float, low_open: bool = False
) -> float | None:
    """An optional number between low and high (low itself excluded where `low_open`)."""
    value = raw.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (low < value if low_open else low <= value)
        or value > high
    ):
        raise RegistryError(f"{where}.{key}: must be a number between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _share(raw: Mapping[str, Any], key: str, where: str) -> float | None:
    """An optional number in (0, 1]."""
    return _optional_number(raw, key, where, 0, 1, low_open=True)


def _strings(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RegistryError(f"{where}.{key}: must be a list of column names")
    return tuple(value)


def _parse_captions(
    raw: Mapping[str, Any], where: str, attributes: tuple[Attribute, ...], source: RegistryFile
) -> CaptionColumns:
    _check_keys(raw, "captions", where, source)
    columns = raw.get("attributes", {})
    names = {a.name for a in attributes}
    for column, name in columns.items():
        if name not in names:
            raise RegistryError(f"{where}.attributes.{column}: {name!r} is not an attribute of this domain")
    phrases = raw.get("phrases", {})
    if not all(isinstance(table, dict) for table in phrases.values()):
        raise RegistryError(f"{where}.phrases: each column maps values to phrases")
    return CaptionColumns(
        dict(columns),
        _strings(raw, "findings", where),
        _strings(raw, "notes", where),
        {k: dict(v) for k, v in phrases.items()},
    )


def _parse_reference_f1(raw: Mapping[str, Any] | None, where: str, source: RegistryFile) -> ReferenceFigure | None:
    if raw is None:
        return None
    _check_keys(raw, "reference_f1", where, source)
    value = _optional_number(raw, "value", where, 0, 1, low_open=True)
    if value is None:
        raise RegistryError(f"{where}: missing required field 'value'")
    return ReferenceFigure(value, _require(raw, "source", where))


def _parse_sources_tables(
    raw: Mapping[str, Any], where: str, source: RegistryFile, packs: Mapping[str, ModelPack]
) -> dict[str, DomainSources]:
    sources = {}
    for pack, table in raw.items():
        if pack not in packs:
            raise RegistryError(f"{where}.{pack}: no such pack (known: {', '.join(packs)})")
        sources[pack] = _parse_sources(table, f"{where}.{pack}", source)
    return sources


def _parse_domain(name: str, raw: Mapping[str, Any], source: RegistryFile, packs: Mapping[str, ModelPack]) -> Domain:
    where = f"domains.{name}"
    _check_keys(raw, "domain", where, source)
    classes = []
    for i, item in enumerate(_require(raw, "classes", where, list)):
        cw = f"{where}.classes[{i}]"
        _check_keys(item, "class", cw, source)
        classes.append(
            ClassInfo(
                _require(item, "code", cw),
                _require(item, "name", cw),
                _require(item, "description", cw),
                _flag(item, "rare", cw),
            )
        )
    codes = [c.code.lower() for c in classes]
    if len(set(codes)) != len(codes):
        raise RegistryError(f"{where}.classes: duplicate class codes")
    templates = tuple(_require(raw, "prompt_templates", where, list))
    for i, template in enumerate(templates):
        if "{class_name}" not in template:
            raise RegistryError(f"{where}.prompt_templates[{i}]: must contain '{{class_name}}'")
    attributes = tuple(_parse_attribute(a, f"{where}.attributes", source) for a in raw.get("attributes", []))
    data = raw.get("data", {})
    _check_keys(data, "data", f"{where}.data", source)
    baseline = raw.get("baseline_class")
    if baseline is not None and str(baseline).lower() not in codes:
        raise RegistryError(
            f"{where}.baseline_class: {baseline!r} is not one of its classes ({', '.join(c.code for c in classes)})"
        )
    return Domain(
        name=name,
        display_name=raw.get("display_name", name),
        modality=_require(raw, "modality", where),
        classes=tuple(classes),
        prompt_templates=templates,
        attributes=attributes,
        sources=_parse_sources_tables(raw.get("sources", {}), f"{where}.sources", source, packs),
        mirror=_flag(raw, "mirror", where),
        captions=_parse_captions(raw.get("captions", {}), f"{where}.captions", attributes, source),
        source_column=raw.get("source_column"),
        data=DataSource(
            data.get("description", ""),
            data.get("licence", ""),
            source.root / data["folder"] if data.get("folder") else None,
        ),
        limitations=raw.get("limitations", "").strip(),
        modality_terms=tuple(t.lower() for t in _strings(raw, "modality_terms", where)),
        grey=_flag(raw, "grey", where),
        crop_margin=_margin(raw, where),
        shortcut=raw.get("shortcut", "").strip(),
        baseline_class=next((c.code for c in classes if baseline and c.code.lower() == str(baseline).lower()), None),
        reference_f1=_parse_reference_f1(raw.get("reference_f1"), f"{where}.reference_f1", source),
        defined_in=source.path,
    )


def _parse_pack(name: str, raw: Mapping[str, Any], source: RegistryFile) -> ModelPack:
    where = f"packs.{name}"
    _check_keys(raw, "pack", where, source)
    card = raw.get("model_card")
    return ModelPack(
        name=name,
        description=raw.get("description", ""),
        base=Source.parse(_require(raw, "base", where), source.root),
        text_encoder=Source.parse(raw["text_encoder"], source.root) if raw.get("text_encoder") else None,
        default_steps=int(raw.get("default_steps", 20)),
        default_guidance=float(raw.get("default_guidance", 5.0)),
        negative_prompt=raw.get("negative_prompt", ""),
        model_card=source.root / card if card else None,
        train_command=raw.get("train_command", ""),
        trains=tuple(raw.get("trains", ())),
        size_budget_mb=raw.get("size_budget_mb"),
    )


def _layer(
    raw: Mapping[str, Any], source: RegistryFile, packs: dict[str, ModelPack], domains: dict[str, Domain], shipped: bool
) -> None:
    """Add one file's packs and domains. The user layer adds new ones; of a shipped domain it may only give the
    sources of packs (a user's own adapters for it) and the folder of its images, so the shipped classes and prompts
    stay as they are."""
    _check_keys(raw, "registry", "registry", source)
    if shipped:
        _require(raw, "packs", "registry", dict)
        _require(raw, "domains", "registry", dict)
    for name, table in raw.get("packs", {}).items():
        if name in packs:
            raise RegistryError(f"{source.path}: pack {name!r} is already defined by the registry it is layered over")
        packs[name] = _parse_pack(name, table, source)
    for name, table in raw.get("domains", {}).items():
        if name not in domains:
            domains[name] = _parse_domain(name, table, source, packs)
            continue
        extra = sorted(set(table) - {"sources", "data"}) or sorted(set(table.get("data", {})) - {"folder"})
        if extra:
            raise RegistryError(
                f"{source.path}: domain {name!r} is defined in {domains[name].defined_in}; a layer over it may only "
                f"give [domains.{name}.sources.<pack>] tables and data.folder, not {', '.join(extra)}"
            )
        added = _parse_sources_tables(table.get("sources", {}), f"domains.{name}.sources", source, packs)
        data = domains[name].data
        if table.get("data", {}).get("folder"):  # the user's own copy of its images (e.g. `domain add --from-medmnist`)
            data = replace(data, folder=source.root / table["data"]["folder"])
        domains[name] = replace(domains[name], sources={**domains[name].sources, **added}, data=data)


def load_registry(path: str | Path | None = None, user: str | Path | None = None) -> Registry:
    """Load and validate a registry file (default: $MEDSYNTH_REGISTRY or assets/registry.toml) and, when `user`
    names a file that exists, the user layer over it. Called at the edges (CLI, the app's start-up) only: library
    code takes the loaded Registry as an argument."""
    path = Path(path or registry_path())
    packs: dict[str, ModelPack] = {}
    domains: dict[str, Domain] = {}
    source, raw = RegistryFile.read(path)
    _layer(raw, source, packs, domains, shipped=True)
    user_path = Path(user) if user is not None else None
    if user_path is not None and user_path.is_file():
        _layer(*RegistryFile.read(user_path)[::-1], packs, domains, shipped=False)
    for pack in packs.values():
        unknown = [d for d in pack.trains if d not in domains]
        if unknown:
            raise RegistryError(f"packs.{pack.name}.trains: unknown domain(s) {', '.join(unknown)}")
    return Registry(path=path, packs=packs, domains=domains, user_path=user_path)


# the files a local source of each role must hold to load (hub and package sources are resolved when loaded)
ROLE_FILES = {
    "adapter": ("pytorch_lora_weights.safetensors",),
    "classifier": ("config.json", "model.safetensors"),
    "clip": ("open_clip_config.json", "open_clip_model.safetensors"),
}


def check_registry(
    path: str | Path | None = None, user: str | Path | None = None, packs: tuple[str, ...] = ()
) -> list[str]:
    """Every problem of the registry (shipped file and user layer) and of its domains' files, one line each:
    a file that does not load stops at its first problem; otherwise each domain's sources in `packs` (default: all)
    are checked for the files they must hold. An empty list: everything is in place."""
    try:
        registry = load_registry(path, user)
    except RegistryError as error:
        return [str(error)]
    problems = [f"no pack {pack!r}; known: {', '.join(registry.packs)}" for pack in packs if pack not in registry.packs]
    for name, domain in registry.domains.items():
        for pack, sources in domain.sources.items():
            if (packs and pack not in packs) or sources.unavailable:
                continue  # a curator's stated reason, not a problem
            for role, files in ROLE_FILES.items():
                source = getattr(sources, role)
                if source is None:
                    problems.append(f"{name} ({pack}): no {role} configured")
                elif source.path is not None and not source.is_hub:
                    missing = [f for f in files if not (source.path / f).is_file()]
                    if not source.path.is_dir():
                        problems.append(f"{name} ({pack}): {role} folder {source.path} not found")
                    elif missing:
                        problems.append(f"{name} ({pack}): {role} folder {source.path} lacks {', '.join(missing)}")
    return problems


def remove_domain_tables(path: Path, name: str) -> str:
    """The user layer's text without `[domains.<name>]` and its sub-tables (the rest, comments included, as it was)."""
    kept, dropping, pending = [], False, []  # pending: comments and blank lines that may head the next table
    prefix = f"domains.{name}"
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$", line)
        if header:
            table = header.group(1).replace('"', "").replace(" ", "")
            dropping = table == prefix or table.startswith(prefix + ".")
            kept += [] if dropping else pending
            pending = []
        if not dropping:
            kept.append(line)
        elif not header and (not line.strip() or line.lstrip().startswith("#")):
            pending.append(line)
        else:
            pending = []  # a key of the dropped table: comments above it were its own
    return "".join(kept + pending)


def write_user_tables(registry: Registry, name: str, tables: str, keep: bool = True) -> Registry:
    """The registry with the user layer's tables of domain `name` replaced by `tables` (TOML text; "" takes them
    out). The layer's new text must load before it replaces the file, so a registry is never left broken; with
    keep=False the file stays as it was and only the returned registry holds the change."""
    path = registry.user_path
    if path is None:
        raise RegistryError("no user registry layer is named (--user-registry or MEDSYNTH_USER_REGISTRY)")
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = remove_domain_tables(path, name) if path.is_file() else ""
    text = kept.rstrip("\n") + "\n\n" + tables if kept.strip() and tables else kept or tables
    staged = path.with_suffix(".toml.new")  # beside the layer: its relative paths resolve the same
    staged.write_text(text, encoding="utf-8")
    try:
        loaded = load_registry(registry.path, staged)
    except RegistryError:
        staged.unlink(missing_ok=True)
        raise
    if not keep:
        staged.unlink()
        return loaded
    staged.replace(path)
    return load_registry(registry.path, path)


def selected_pack_name() -> str:
    """The pack chosen by the MEDSYNTH_PACK setting (default: the embedded 'mini')."""
    return os.environ.get(PACK_ENV, EMBEDDED_PACK).strip() or EMBEDDED_PACK
