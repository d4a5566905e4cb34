"""The demo's real (small) training: gradient-boosted trees on scikit-learn's breast cancer data.

The data set ships inside scikit-learn, so nothing is downloaded. A candidate is trained with
given hyper-parameters; its validation AUC is reported after every boosting stage (the curve a
user would watch), and its final validation and test AUC are what the sweep and the gates use.
A `weak` candidate sees one uninformative feature only: a realistic model built on the wrong
inputs, which the Production gate must refuse.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

SEED = 42
# "mean fractal dimension": nearly independent of the diagnosis.
UNINFORMATIVE_FEATURE = 9


@dataclass(frozen=True)
class Splits:
    """Train, validation and test sets, stratified and reproducible."""

    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    x_test: Any
    y_test: Any
    csv: bytes  # the whole data set as CSV, to store and digest as the run's input

    def columns(self, features: Sequence[int] | None) -> Splits:
        """The same splits restricted to some features (all when None)."""
        if features is None:
            return self
        cols = list(features)
        return Splits(
            self.x_train[:, cols],
            self.y_train,
            self.x_val[:, cols],
            self.y_val,
            self.x_test[:, cols],
            self.y_test,
            self.csv,
        )


@dataclass(frozen=True)
class Trained:
    """A trained candidate: its pickled model and its scores."""

    model_bytes: bytes
    val_auc: float
    test_auc: float


def load_splits() -> Splits:
    data = load_breast_cancer()
    x, y = data.data, data.target
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=0.25, random_state=SEED, stratify=y
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.25, random_state=SEED, stratify=y_rest
    )
    buffer = io.StringIO()
    buffer.write(",".join([*data.feature_names, "target"]) + "\n")
    for row, label in zip(x, y, strict=True):
        buffer.write(",".join(f"{v:.6g}" for v in row) + f",{label}\n")
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test, buffer.getvalue().encode())


def train(
    splits: Splits,
    params: dict[str, float | int],
    on_stage: Callable[[int, float], None],
    features: Sequence[int] | None = None,
) -> Trained:
    """Fit one candidate, calling `on_stage(step, val_auc)` after each boosting stage."""
    data = splits.columns(features)
    model = GradientBoostingClassifier(random_state=SEED, **params)
    model.fit(data.x_train, data.y_train)
    for step, proba in enumerate(model.staged_predict_proba(data.x_val)):
        on_stage(step, float(roc_auc_score(data.y_val, proba[:, 1])))
    val_auc = float(roc_auc_score(data.y_val, model.predict_proba(data.x_val)[:, 1]))
    test_auc = float(roc_auc_score(data.y_test, model.predict_proba(data.x_test)[:, 1]))
    return Trained(pickle.dumps(model), val_auc, test_auc)
