"""The estimators on pandas DataFrames: feature names, name checks, the labels' own types, and a
scikit-learn Pipeline with a ColumnTransformer that fits, predicts and saves (issue 22, item 3)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from backprop import MLPClassifier, MLPRegressor

pd = pytest.importorskip("pandas")


def _frame(n=60, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n),
                       "city": rng.choice(["Oslo", "Rome", "Lima"], size=n)})
    return df


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.mark.parametrize("labels", [np.array([True, False]), np.array(["no", "yes"]), np.array([3, 7])])
def test_dataframe_sets_feature_names_and_keeps_label_types(labels):
    """A numeric DataFrame sets feature_names_in_/n_features_in_; classes_ and predictions keep y's type."""
    df = _frame()[["x", "z"]]
    y = labels[(df["x"] > 0).astype(int).to_numpy()]
    clf = MLPClassifier((5,), max_iter=30, random_state=0).fit(df, pd.Series(y))
    assert list(clf.feature_names_in_) == ["x", "z"] and clf.n_features_in_ == 2
    assert clf.classes_.dtype == np.unique(labels).dtype and set(clf.classes_) == set(labels.tolist())
    assert clf.predict(df).dtype == labels.dtype


def test_feature_names_are_checked_at_predict_time():
    """Columns in another order or with other names: scikit-learn's ValueError naming them."""
    df = _frame()[["x", "z"]]
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=20, random_state=0).fit(df, df["x"] * 2)
    with pytest.raises(ValueError, match="feature names"):
        reg.predict(df.rename(columns={"z": "w"}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg.predict(df.to_numpy())
    assert any("feature names" in str(w.message) for w in caught)


def test_pipeline_with_column_transformer_fits_predicts_and_saves(tmp_path):
    """Pipeline(ColumnTransformer(one-hot, impute, scale), MLPClassifier): the saved estimator
    reloads and predicts what the pipeline's own estimator predicts on the transformed rows."""
    df = _frame(80)
    df.loc[::7, "x"] = np.nan
    y = np.where((df["city"] == "Oslo") | (df["z"] > 1), "up", "down")
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["x", "z"]),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["city"]),
    ]).set_output(transform="pandas")
    pipe = make_pipeline(pre, MLPClassifier((6,), max_iter=200, random_state=0)).fit(df, y)
    assert pipe.score(df, y) > 0.8
    mlp = pipe[-1]
    assert list(mlp.feature_names_in_) == list(pre.get_feature_names_out())
    path = mlp.save(tmp_path / "mlp.safetensors")
    again = MLPClassifier.load(path)
    Z = pipe[0].transform(df)
    np.testing.assert_array_equal(again.predict(Z), mlp.predict(Z))
    assert list(again.feature_names_in_) == list(mlp.feature_names_in_)
    assert list(again.classes_) == ["down", "up"]
