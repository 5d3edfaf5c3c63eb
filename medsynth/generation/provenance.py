"""Provenance: PNG text chunks that say how an image was made, and a visible SYNTHETIC mark."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path
from typing import Any, Mapping

from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

MARK_TEXT = "SYNTHETIC"
SOFTWARE = "medsynth"
# fields written as their own tEXt chunk, readable by any PNG tool
TEXT_FIELDS = (
    "prompt",
    "seed",
    "pack",
    "base",
    "adapter",
    "scheduler",
    "steps",
    "guidance",
    "domain",
    "label",
    "resolution",
)
JSON_FIELD = "medsynth"  # the whole record, with nested scores, as one JSON chunk


MARKED_MIN_SIZE = 96  # smaller images are enlarged (whole factor) so the mark stays legible; 128 px keep their pixels
DISPLAY_SIZE = 384  # the app shows images at least this large (a copy, upsampled for display only)


def add_synthetic_mark(image: Image.Image, min_size: int = MARKED_MIN_SIZE) -> Image.Image:
    """A copy with a 'SYNTHETIC' banner along the bottom edge.

    Images smaller than `min_size` are first enlarged (Lanczos, whole factor) so the banner is
    readable; the provenance record keeps the native size. Unmarked exports keep native pixels.
    """
    grey = image.mode in ("L", "LA", "I", "I;16")
    marked = image.convert("L" if grey else "RGB")  # a grey modality stays single-channel, banner included
    factor = -(-min_size // min(marked.size)) if min(marked.size) < min_size else 1
    if factor > 1:
        marked = marked.resize((marked.width * factor, marked.height * factor), Image.Resampling.LANCZOS)
    else:
        marked = marked.copy()
    width, height = marked.size
    band = max(12, height // 12)
    size = int(band * 0.8)
    font = ImageFont.load_default(size=size)
    while size > 6 and font.getbbox(MARK_TEXT)[2] > 0.9 * width:
        size -= 1
        font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(marked)
    draw.rectangle([0, height - band, width, height], fill=0 if grey else (0, 0, 0))
    left, top, right, bottom = draw.textbbox((0, 0), MARK_TEXT, font=font)
    x = (width - (right - left)) // 2 - left
    y = height - band + (band - (bottom - top)) // 2 - top
    draw.text((x, y), MARK_TEXT, fill=255 if grey else (255, 210, 0), font=font)
    return marked


def display_copy(image: Image.Image, size: int = DISPLAY_SIZE) -> Image.Image:
    """An enlarged copy for the screen (whole factor, Lanczos): a 128 px finding is too small to read at 128 px.
    Files and downloads keep the native pixels; only what the browser shows is upsampled."""
    factor = max(1, -(-size // min(image.size)))
    return (
        image if factor == 1 else image.resize((image.width * factor, image.height * factor), Image.Resampling.LANCZOS)
    )


def png_info(record: Mapping[str, Any], native_size: tuple[int, int] | None = None) -> PngInfo:
    info = PngInfo()
    for key in TEXT_FIELDS:
        if record.get(key) is not None:
            info.add_text(key, str(record[key]))
    info.add_text("synthetic", "true")
    info.add_text("Software", SOFTWARE)
    extra = {"native_size": list(native_size)} if native_size else {}
    info.add_text(JSON_FIELD, json.dumps({**record, **extra, "synthetic": True}, default=str))
    return info


def png_bytes(image: Image.Image, record: Mapping[str, Any], mark: bool = True) -> bytes:
    """Encode an image as PNG with its provenance (and the visible mark unless mark=False)."""
    buffer = BytesIO()
    shown = add_synthetic_mark(image) if mark else image
    shown.save(buffer, format="PNG", pnginfo=png_info(record, native_size=image.size))
    return buffer.getvalue()


def save_png(image: Image.Image, path: str | Path, record: Mapping[str, Any], mark: bool = True) -> Path:
    path = Path(path)
    path.write_bytes(png_bytes(image, record, mark))
    return path


def read_provenance(source: str | Path | bytes | Image.Image) -> dict[str, Any]:
    """The provenance record of a medsynth PNG; an empty dict for images without one."""
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, bytes):
        image = Image.open(BytesIO(source))
    else:
        image = Image.open(source)
    text = getattr(image, "text", {}) or {}
    if JSON_FIELD in text:
        return json.loads(text[JSON_FIELD])
    return {k: v for k, v in text.items() if k in TEXT_FIELDS or k == "synthetic"}
