"""Figures for the Studies tab: mean scores and real-vs-synthetic accuracy with their 95% intervals.

Built on matplotlib's object API (no pyplot), so figures from concurrent requests never share state.
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

from medsynth.studies.stats import ALL, StudyStats

COLOURS = {"real": "#4c72b0", "synthetic": "#dd8452"}


def _title(text: str, width: int = 30) -> str:
    """A panel title wrapped to its panel: whole, never cut at the figure's edge."""
    return textwrap.fill(text, width)


def _error(means, lows, highs) -> np.ndarray:
    means, lows, highs = (np.asarray(v, dtype=float) for v in (means, lows, highs))
    return np.nan_to_num(np.vstack([means - lows, highs - means]), nan=0.0)


def study_figure(stats: StudyStats) -> Figure:
    """Realism (and alignment) by class, real beside synthetic; accuracy by class against 50%."""
    measures = ["realism"] + (["alignment"] if stats.scores["alignment_mean"].notna().any() else [])
    figure = Figure(figsize=(4.2 * (len(measures) + 1), 3.6), layout="constrained")
    axes = figure.subplots(1, len(measures) + 1, squeeze=False)[0]
    cells = sorted({(d, c) for d, c in zip(stats.scores["domain"], stats.scores["label"])})
    names = [f"{d}/{c}" for d, c in cells]
    x = np.arange(len(cells))
    for axis, measure in zip(axes, measures):
        for offset, source in ((-0.2, "real"), (0.2, "synthetic")):
            part = stats.scores[stats.scores["source"] == source].set_index(["domain", "label"]).reindex(cells)
            means = part[f"{measure}_mean"].to_numpy(dtype=float)
            axis.bar(x + offset, np.nan_to_num(means), 0.4, label=source, color=COLOURS[source],
                     yerr=_error(means, part[f"{measure}_low"], part[f"{measure}_high"]), capsize=3)  # fmt: skip
        axis.set(title=_title(f"Mean {measure} (95% bootstrap CI)"), ylim=(0, 5.5), xticks=x)
        axis.set_xticklabels(names, rotation=30, ha="right")
        axis.legend(loc="lower right", fontsize=8)
    detection = stats.detection[stats.detection["domain"] != ALL]
    axis = axes[-1]
    accuracy = detection["accuracy"].to_numpy(dtype=float)
    axis.bar(np.arange(len(detection)), accuracy, 0.6, color="#55a868",
             yerr=_error(accuracy, detection["accuracy_low"], detection["accuracy_high"]), capsize=3)  # fmt: skip
    for x, note in enumerate(detection["note"]):
        if note:  # no real (or synthetic) images, or too few: no bar to read
            axis.text(x, 0.04, "too few" if note.startswith("too few") else "n/a", ha="center", fontsize=8, rotation=90)
    axis.axhline(0.5, color="black", linestyle="--", linewidth=1, label="chance (indistinguishable)")
    axis.set(
        title=_title("Real-vs-synthetic accuracy (95% Wilson CI)"), ylim=(0, 1.05), xticks=np.arange(len(detection))
    )
    axis.set_xticklabels([f"{d}/{c}" for d, c in zip(detection["domain"], detection["label"])], rotation=30, ha="right")
    axis.legend(loc="lower right", fontsize=8)
    return figure
