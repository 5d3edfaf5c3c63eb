"""Pictures for the reports: labelled image grids and confusion matrices (people read them faster than tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image


def _pyplot():
    """matplotlib's pyplot on the file-only backend (reports are written, never shown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_grid(
    rows: Sequence[Sequence[Image.Image]], row_labels: Sequence[str], size: int = 64, label_width: int = 150
) -> Image.Image:
    """One labelled row per class: a picture people can read faster than a table."""
    from PIL import ImageDraw, ImageFont

    columns = max((len(r) for r in rows), default=0)
    grid = Image.new("RGB", (label_width + columns * (size + 2), len(rows) * (size + 2)), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(size=12)
    for r, (row, label) in enumerate(zip(rows, row_labels)):
        y = r * (size + 2)
        draw.text((4, y + size // 2 - 7), label, fill="black", font=font)
        for c, image in enumerate(row):
            grid.paste(image.convert("RGB").resize((size, size)), (label_width + c * (size + 2), y))
    return grid


def rows_by_class(
    codes: Sequence[str], real: tuple[Sequence, Sequence[str]], generated: dict[str, tuple[Sequence, Sequence[str]]],
    per_row: int = 6,
) -> tuple[list[list], list[str]]:  # fmt: skip
    """Per class: a row of real images, then a row from each generated set (name → (images, labels)), for
    image_grid; the reader compares each generator with the real images of the same class."""
    rows, labels = [], []
    for code in codes:
        for name, (images, image_labels) in {"real": real, **generated}.items():
            rows.append([image for image, label in zip(images, image_labels) if label == code][:per_row])
            labels.append(f"{code}: {name}")
    return rows, labels


def confusion_plot(matrix: np.ndarray, classes: list[str], title: str, path: Path) -> None:
    """Confusion matrix as a picture: shares coloured, counts written."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(0.6 * len(classes) + 2, 0.6 * len(classes) + 1.5))
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(
            j, i, int(count), ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black", fontsize=8
        )
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("evaluator predicted")
    ax.set_ylabel("asked for")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def tradeoff_plot(points: Sequence[dict], title: str, path: Path) -> None:
    """Evaluator macro-F1 against Fréchet excess, one labelled point per setting: the choice on one page."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for mode in sorted({p["mode"] for p in points}):
        mine = [p for p in points if p["mode"] == mode]
        ax.plot([p["frechet_excess"] for p in mine], [p["evaluator_macro_f1"] for p in mine], "o", label=mode)
        for p in mine:
            ax.annotate(f"g{p['guidance']:g} s{p['steps']}", (p["frechet_excess"], p["evaluator_macro_f1"]), fontsize=8,
                        xytext=(3, 3), textcoords="offset points")  # fmt: skip
    ax.set_xlabel("Fréchet distance − real floor (lower is closer to real)")
    ax.set_ylabel("evaluator macro-F1 on generated images")
    ax.set_title(title, fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
