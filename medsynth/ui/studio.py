"""The app's one stateful object: the loaded engine (or why it could not load) and where files go."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from medsynth import paths
from medsynth.generation.counterfactual import CounterfactualResult
from medsynth.generation.engine import GenerationResult, MedSynth, PackUnavailableError
from medsynth.generation.provenance import display_copy
from medsynth.generation.results import image_filename, zip_result
from medsynth.registry import Registry, load_registry, selected_pack_name

logger = logging.getLogger(__name__)

NOTICE = "SYNTHETIC — for education only, not for diagnosis"
KEEP_OUTPUT_S = 3600  # generated files are served for an hour, then pruned


def gpu(function):
    """Run on a ZeroGPU slot when the Hugging Face `spaces` package is there; unchanged otherwise."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return function
    return spaces.GPU(function)


@dataclass(frozen=True)
class SavedResult:
    pngs: list[Path]  # what a download gives: native pixels, the SYNTHETIC mark, provenance
    shown: list[Path]  # what the browser shows: the same images enlarged
    archive: Path


@dataclass
class Studio:
    registry: Registry
    pack_name: str
    engine: MedSynth | None
    load_error: str | None = None
    reference_root: Path | None = None  # real images for the Compare tab
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="medsynth-app-")))

    @classmethod
    def create(
        cls,
        pack: str | None = None,
        registry: Registry | None = None,
        reference_root: str | Path | None = None,
        device: str | None = None,
    ) -> "Studio":
        registry = registry or load_registry(user=paths.user_registry_path())  # the app's start-up: an edge
        pack = pack or selected_pack_name()
        engine, error = None, None
        try:
            engine = MedSynth(registry, pack, device)
        except (PackUnavailableError, KeyError) as problem:
            error = str(problem)
            logger.warning("starting without a model pack: %s", error)
        if reference_root is None:
            reference_root = paths.reference_root()
        return cls(registry, pack, engine, error, Path(reference_root) if reference_root else None)

    @property
    def ready(self) -> bool:
        return self.engine is not None

    def domain_choices(self) -> list[tuple[str, str]]:
        """(label, value) pairs of the domains the loaded pack can serve."""
        if not self.engine:
            return []
        return [
            (f"{self.registry.get_domain(d).display_name} ({self.registry.get_domain(d).modality})", d)
            for d in self.engine.available_domains
        ]

    def new_output_dir(self) -> Path:
        self._prune()
        folder = self.workdir / f"{int(time.time())}-{uuid.uuid4().hex[:8]}"
        folder.mkdir(parents=True)
        return folder

    def _prune(self) -> None:
        cutoff = time.time() - KEEP_OUTPUT_S
        for folder in self.workdir.glob("*-*"):
            try:
                if int(folder.name.split("-")[0]) < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except ValueError:
                continue

    def save_result(self, result: GenerationResult) -> SavedResult:
        """Marked PNGs at native size with provenance, enlarged copies for the screen, and a ZIP (with manifest.csv)."""
        folder = self.new_output_dir()
        pngs, shown = [], []
        for image in result.images:
            path = folder / image_filename(image)
            path.write_bytes(image.png())
            pngs.append(path)
            shown.append(self.display_file(path))
        archive = folder / f"medsynth_{result.request.domain}_s{result.seed}.zip"
        archive.write_bytes(zip_result(result))
        return SavedResult(pngs, shown, archive)

    def save_counterfactual(self, result: CounterfactualResult) -> tuple[str, str, str, str]:
        """Display copies of the source, the first counterfactual and its heat map, and the marked PNG to download."""
        folder = self.new_output_dir()
        item = result.items[0]
        png = folder / image_filename(item.image)
        png.write_bytes(item.image.png())
        shown = []
        for name, image in (("source", result.source), ("heat", item.heat_map)):
            shown.append(folder / f"{name}.display.png")
            display_copy(image).save(shown[-1])
        return str(shown[0]), str(self.display_file(png)), str(shown[1]), str(png)

    @staticmethod
    def display_file(path: Path) -> Path:
        """An enlarged copy of an image file beside it, for the browser only (see provenance.display_copy)."""
        target = path.with_name(f"{path.stem}.display.png")
        with Image.open(path) as image:
            display_copy(image).save(target)
        return target
