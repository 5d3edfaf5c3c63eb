"""Analysis of a reader study, from one row per rating to the tables an admin reads.

- mean realism and alignment per domain, class and source with a 95% bootstrap percentile interval, which
  stays inside the 1–5 scale (a t interval of two ratings can reach -15 to 22); below MIN_RATINGS ratings no
  interval is given and the table says so;
- real-vs-synthetic accuracy with a Wilson interval and an exact binomial test against 50%
  (50% means raters cannot tell synthetic images from real ones);
- inter-rater agreement: Fleiss' kappa (statsmodels) for the real/synthetic answer and
  Krippendorff's alpha (the `krippendorff` package) for the answer (nominal) and the 1–5
  scales (ordinal); alpha copes with raters who have not rated every item.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

CONFIDENCE = 0.95
ALL = "all"
SCORE_COLUMNS = [
    "domain", "label", "source", "ratings", "items",
    "realism_mean", "realism_low", "realism_high", "alignment_mean", "alignment_low", "alignment_high", "note",
]  # fmt: skip
MIN_RATINGS = 5  # fewer ratings give a mean, not an interval
BOOTSTRAP_RESAMPLES = 4000
DETECTION_COLUMNS = [
    "domain", "label", "ratings", "correct", "accuracy", "accuracy_low", "accuracy_high", "p_value",
    "accuracy_on_real", "accuracy_on_synthetic", "real_items", "synthetic_items", "note",
]  # fmt: skip
MIN_ITEMS_PER_SOURCE = 5  # fewer real or synthetic images in a cell: real-vs-synthetic accuracy says nothing
AGREEMENT_COLUMNS = ["scope", "measure", "value", "items", "raters", "note"]
NEEDED = ("rater", "item_id", "domain", "label", "source", "realism", "alignment", "guess")


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class StudyStats:
    scores: pd.DataFrame  # SCORE_COLUMNS
    detection: pd.DataFrame  # DETECTION_COLUMNS, with an all/all row
    agreement: pd.DataFrame  # AGREEMENT_COLUMNS
    ratings: int
    raters: int
    items: int

    def text(self) -> str:
        """A plain-text report (what `medsynth study stats` prints)."""
        with pd.option_context(
            "display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format
        ):
            return "\n\n".join([
                f"{self.ratings} rating(s) by {self.raters} rater(s) of {self.items} item(s)",
                "Scores (mean and 95% bootstrap interval)\n" + (self.scores.to_string(index=False) if len(self.scores) else "(no ratings yet)"),
                "Real or synthetic? (accuracy, 95% Wilson interval, binomial test against 50%)\n"
                + (self.detection.to_string(index=False) if len(self.detection) else "(no ratings yet)"),
                "Inter-rater agreement\n" + self.agreement.to_string(index=False),
            ])  # fmt: skip


def mean_interval(values: pd.Series | np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """Mean with a bootstrap percentile interval (resampled means never leave the ratings' own range, so the
    interval stays on the scale); NaN bounds below MIN_RATINGS values. Seeded: the same ratings, the same interval."""
    data = np.asarray(pd.Series(values).dropna(), dtype=float)
    if len(data) == 0:
        return Interval(math.nan, math.nan, math.nan)
    if len(data) < MIN_RATINGS:
        return Interval(float(data.mean()), math.nan, math.nan)
    if np.all(data == data[0]):  # every rater gave the same answer: nothing to resample
        return Interval(float(data[0]), float(data[0]), float(data[0]))
    from scipy.stats import bootstrap

    result = bootstrap(
        (data,), np.mean, confidence_level=confidence, n_resamples=BOOTSTRAP_RESAMPLES, method="percentile", rng=0
    )
    return Interval(float(data.mean()), float(result.confidence_interval.low), float(result.confidence_interval.high))


def proportion_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> Interval:
    """A proportion with its Wilson score interval."""
    from statsmodels.stats.proportion import proportion_confint

    if trials == 0:
        return Interval(math.nan, math.nan, math.nan)
    low, high = proportion_confint(successes, trials, alpha=1 - confidence, method="wilson")
    estimate = successes / trials
    # statsmodels' rounding can put a bound a hair past the estimate at 0 or 1 (0 of 6: low 2.8e-17), and
    # the plot's error bars (estimate - low) would come out negative, which matplotlib refuses
    return Interval(estimate, min(float(low), estimate), max(float(high), estimate))


def chance_p_value(successes: int, trials: int) -> float:
    """Two-sided exact binomial test of accuracy against 50% (guessing)."""
    from scipy.stats import binomtest

    return float(binomtest(successes, trials, 0.5).pvalue) if trials else math.nan


def fleiss_kappa(frame: pd.DataFrame, column: str = "guess") -> tuple[float, int, int, str]:
    """Fleiss' kappa of a categorical answer: (kappa, items, raters per item, note).

    Fleiss' kappa needs the same number of raters per item, so it uses the items that have the
    most common number of ratings (at least two); Krippendorff's alpha below uses all of them.
    """
    from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

    counts = frame.groupby("item_id")[column].value_counts().unstack(fill_value=0)
    per_item = counts.sum(axis=1)
    per_item = per_item[per_item >= 2]
    if len(per_item) < 2:
        return math.nan, 0, 0, "needs two or more items each rated by two or more raters"
    raters = int(per_item.value_counts().sort_index(ascending=False).idxmax())
    table = counts.loc[per_item[per_item == raters].index].to_numpy()
    if len(table) < 2:
        return math.nan, len(table), raters, "needs two or more items with the same number of raters"
    note = "" if len(table) == len(per_item) else f"items with {raters} raters only"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all answers identical: chance agreement 1, kappa undefined
        kappa = float(statsmodels_fleiss(table, method="fleiss"))
    if math.isnan(kappa):
        note = "undefined: every rater gave the same answer to every item"
    return kappa, len(table), raters, note


def krippendorff_alpha(frame: pd.DataFrame, column: str, level: str) -> tuple[float, int, int, str]:
    """Krippendorff's alpha of one answer (raters × items, missing allowed): (alpha, items, raters, note)."""
    import krippendorff

    data = frame.dropna(subset=[column])
    if column == "guess":
        data = data.assign(guess=(data["guess"] == "synthetic").astype(float))
    matrix = data.pivot_table(index="rater", columns="item_id", values=column, aggfunc="first")
    pairable = matrix.columns[matrix.notna().sum(axis=0) >= 2]
    matrix = matrix[pairable]
    if len(pairable) == 0:
        return math.nan, 0, 0, "needs items rated by two or more raters"
    if pd.unique(matrix.stack()).size < 2:
        return math.nan, len(pairable), len(matrix), "undefined: every rating has the same value"
    alpha = krippendorff.alpha(reliability_data=matrix.to_numpy(dtype=float), level_of_measurement=level)
    return float(alpha), len(pairable), len(matrix), ""


def agreement_rows(frame: pd.DataFrame, scope: str) -> list[dict]:
    rows = []

    def add(measure: str, result: tuple[float, int, int, str]) -> None:
        value, items, raters, note = result
        rows.append(
            {"scope": scope, "measure": measure, "value": value, "items": items, "raters": raters, "note": note}
        )

    add("Fleiss' kappa, real or synthetic", fleiss_kappa(frame))
    add("Krippendorff's alpha (nominal), real or synthetic", krippendorff_alpha(frame, "guess", "nominal"))
    add("Krippendorff's alpha (ordinal), realism", krippendorff_alpha(frame, "realism", "ordinal"))
    if frame["alignment"].notna().any():
        add("Krippendorff's alpha (ordinal), alignment", krippendorff_alpha(frame, "alignment", "ordinal"))
    return rows


def score_table(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (domain, label, source), group in frame.groupby(["domain", "label", "source"], sort=True):
        realism, alignment = mean_interval(group["realism"]), mean_interval(group["alignment"])
        note = f"fewer than {MIN_RATINGS} ratings: no interval" if len(group) < MIN_RATINGS else ""
        rows.append({
            "domain": domain, "label": label, "source": source, "ratings": len(group), "items": group["item_id"].nunique(),
            "realism_mean": realism.estimate, "realism_low": realism.low, "realism_high": realism.high,
            "alignment_mean": alignment.estimate, "alignment_low": alignment.low, "alignment_high": alignment.high,
            "note": note,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def detection_note(real_items: int, synthetic_items: int, cell: bool = True) -> str:
    """Why a row's real-vs-synthetic accuracy is not reported, or '' where it is. A cell (one class) needs
    MIN_ITEMS_PER_SOURCE of each; the pooled row needs only both sources, since it pools what the cells hold."""
    if not real_items or not synthetic_items:
        missing = "real" if not real_items else "synthetic"
        return f"no {missing} images in this cell: raters had nothing to tell apart, so no accuracy or test"
    if cell and min(real_items, synthetic_items) < MIN_ITEMS_PER_SOURCE:
        return (
            f"too few images to read ({real_items} real, {synthetic_items} synthetic; "
            f"{MIN_ITEMS_PER_SOURCE} of each needed)"
        )
    return ""


def _detection_row(domain: str, label: str, group: pd.DataFrame, cell: bool = True) -> dict:
    correct = group["guess"] == group["source"]
    k, n = int(correct.sum()), len(group)
    items = group.groupby("source")["item_id"].nunique()
    real_items, synthetic_items = int(items.get("real", 0)), int(items.get("synthetic", 0))
    note = detection_note(real_items, synthetic_items, cell)
    accuracy = proportion_interval(k, n) if not note else Interval(math.nan, math.nan, math.nan)

    def on(source: str) -> float:
        part = correct[group["source"] == source]
        return float(part.mean()) if len(part) else math.nan

    return {
        "domain": domain, "label": label, "ratings": n, "correct": k, "accuracy": accuracy.estimate,
        "accuracy_low": accuracy.low, "accuracy_high": accuracy.high, "p_value": math.nan if note else chance_p_value(k, n),
        "accuracy_on_real": on("real"), "accuracy_on_synthetic": on("synthetic"), "real_items": real_items,
        "synthetic_items": synthetic_items, "note": note,
    }  # fmt: skip


def detection_table(frame: pd.DataFrame) -> pd.DataFrame:
    rows = [_detection_row(d, c, g) for (d, c), g in frame.groupby(["domain", "label"], sort=True)]
    if len(frame):
        rows.append(_detection_row(ALL, ALL, frame, cell=False))
    return pd.DataFrame(rows, columns=DETECTION_COLUMNS)


def analyse(ratings: pd.DataFrame | list[dict]) -> StudyStats:
    """Every table of the analysis from one row per rating (as StudyStore.ratings returns them)."""
    frame = pd.DataFrame(ratings)
    if frame.empty:
        frame = pd.DataFrame(columns=list(NEEDED))
    missing = [c for c in NEEDED if c not in frame.columns]
    if missing:
        raise ValueError(f"ratings lack column(s) {', '.join(missing)}")
    frame = frame.assign(
        realism=pd.to_numeric(frame["realism"], errors="coerce"),
        alignment=pd.to_numeric(frame["alignment"], errors="coerce"),
    )
    agreement = agreement_rows(frame, ALL)
    domains = sorted(frame["domain"].unique())
    if len(domains) > 1:
        for domain in domains:
            agreement += agreement_rows(frame[frame["domain"] == domain], domain)
    return StudyStats(
        scores=score_table(frame),
        detection=detection_table(frame),
        agreement=pd.DataFrame(agreement, columns=AGREEMENT_COLUMNS),
        ratings=len(frame),
        raters=frame["rater"].nunique(),
        items=frame["item_id"].nunique(),
    )
