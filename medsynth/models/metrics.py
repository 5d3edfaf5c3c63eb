"""Classification metrics via torchmetrics (one implementation for training, evaluation and experiments)."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_recall,
)


def classification_metrics(y_true, y_pred, n_classes: int) -> dict[str, float]:
    """Accuracy, balanced accuracy (mean per-class recall) and macro-F1 of integer labels."""
    target, preds = torch.as_tensor(np.asarray(y_true)), torch.as_tensor(np.asarray(y_pred))
    return {
        "accuracy": multiclass_accuracy(preds, target, n_classes, average="micro").item(),
        "balanced_accuracy": multiclass_recall(preds, target, n_classes, average="macro").item(),
        "macro_f1": multiclass_f1_score(preds, target, n_classes, average="macro").item(),
    }


def per_class_recall(y_true, y_pred, n_classes: int) -> list[float]:
    target, preds = torch.as_tensor(np.asarray(y_true)), torch.as_tensor(np.asarray(y_pred))
    return multiclass_recall(preds, target, n_classes, average=None).tolist()


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class (counts)."""
    target, preds = torch.as_tensor(np.asarray(y_true)), torch.as_tensor(np.asarray(y_pred))
    return multiclass_confusion_matrix(preds, target, n_classes).numpy()
