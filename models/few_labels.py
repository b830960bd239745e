"""Codes as features: a linear classifier trained on a few labelled images per class.

Unlabelled images are plentiful, labels are not. An autoencoder (or PCA) is fitted on all training
images without their labels; then a logistic regression (scikit-learn) is trained on the codes of only
``n`` labelled images per class and scored on the whole test set. Repeating the draw of the labelled
images ``draws`` times gives a mean and a standard deviation: with one image per class the draw
matters a lot. Features are standardised with the statistics of all training codes (known without
labels), so the classifier's regularisation treats every feature alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class FewLabelSettings:
    """Labels per class, draws of the labelled set, and the classifier's settings (scikit-learn's
    defaults: L2 penalty, C = 1, lbfgs)."""

    per_class: Tuple[int, ...] = (1, 10, 100)
    draws: int = 20
    seed: int = 0
    max_iter: int = 1000


def labelled_subset(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` random items of every class (sorted)."""
    picks = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in np.unique(labels)]
    return np.sort(np.concatenate(picks))


def few_label_accuracy(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                       test_labels: np.ndarray, settings: FewLabelSettings = FewLabelSettings()) -> Dict[int, List[float]]:
    """{labels per class: [test accuracy of each draw]} for one kind of feature."""
    from sklearn.linear_model import LogisticRegression

    mean, std = train_features.mean(axis=0), train_features.std(axis=0) + 1e-8
    train_z, test_z = (train_features - mean) / std, (test_features - mean) / std
    rng = np.random.default_rng(settings.seed)  # the same labelled draws for every kind of feature
    results: Dict[int, List[float]] = {}
    for n in settings.per_class:
        results[n] = []
        for _ in range(settings.draws):
            pick = labelled_subset(train_labels, n, rng)
            classifier = LogisticRegression(max_iter=settings.max_iter)
            classifier.fit(train_z[pick], train_labels[pick])
            results[n].append(float(classifier.score(test_z, test_labels)))
    return results


def table(rows: Dict[str, Dict[int, List[float]]]) -> str:
    """A text table: one row per kind of feature, one column per number of labels per class."""
    sizes: Sequence[int] = next(iter(rows.values())).keys()
    lines = [f"{'features':>24} | " + " | ".join(f"{n:>3} per class    " for n in sizes)]
    for name, accuracies in rows.items():
        cells = [f"{100 * np.mean(a):5.1f} +- {100 * np.std(a):4.1f} %" for a in accuracies.values()]
        lines.append(f"{name:>24} | " + " | ".join(cells))
    return "\n".join(lines)
