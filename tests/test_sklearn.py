"""fastprop.sklearn: scikit-learn's own estimator checks, the ecosystem (Pipeline, GridSearchCV,
cross_val_score, pickle, joblib), the tasks, and the same training as scikit-learn's MLP."""
import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastprop.sklearn import MLPClassifier, MLPRegressor, expected_failed_checks  # noqa: E402


@parametrize_with_checks([MLPClassifier(max_iter=100, random_state=0),
                          MLPRegressor(max_iter=100, random_state=0)],
                         expected_failed_checks=expected_failed_checks)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
