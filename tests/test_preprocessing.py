"""Feature scaling, label encoding, task detection and the model-file preprocessing fields."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backprop import Network
from backprop._validation import BackpropError
from backprop.csvdata import parse_csv
from backprop.preprocessing import (LabelEncoder, Preprocessor, Standardizer, detect_task,
                                    load_model)


def test_standardizer_matches_the_formula():
    # z = (x - mean) / std per column (population std), computed by hand; constant column -> scale 1.
    X = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 4.0], [8.0, 5.0, 9.0]])
    s = Standardizer.fit(X)
    mean = X.sum(axis=0) / 3
    std = np.sqrt(((X - mean) ** 2).sum(axis=0) / 3)
    np.testing.assert_allclose(s.mean, mean)
    np.testing.assert_allclose(s.scale, [std[0], 1.0, std[2]])
    np.testing.assert_allclose(s.transform(X)[:, 0], (X[:, 0] - mean[0]) / std[0])
    np.testing.assert_allclose(s.inverse_transform(s.transform(X)), X)


def test_standardizer_dict_round_trip_through_json():
    # to_dict -> JSON -> from_dict gives the same transform exactly.
    s = Standardizer.fit(np.random.default_rng(0).normal(3, 7, size=(20, 4)))
    back = Standardizer.from_dict(json.loads(json.dumps(s.to_dict())))
    X = np.random.default_rng(1).normal(size=(5, 4))
    np.testing.assert_array_equal(back.transform(X), s.transform(X))


@pytest.mark.parametrize(
    "data, expected",
    [
        ([1, 2], "`scaler` must be an object"),
        ({"mean": [0.0], "scale": [0.0]}, "`scaler.scale` must be a non-empty list of positive"),
        ({"mean": [0.0, 1.0], "scale": [1.0]}, "must have as many entries"),
        ({"mean": ["a"], "scale": [1.0]}, "`scaler.mean` must be a non-empty list of finite numbers"),
    ],
)
def test_standardizer_from_bad_dict(data, expected):
    # A corrupted scaler in a model file is refused by name.
    with pytest.raises(BackpropError, match=expected.replace("(", r"\(").replace(".", r"\.")):
        Standardizer.from_dict(data)


def test_label_encoder_integer_and_text_classes():
    # Integer labels become sorted int classes ("2" and "2.0" are the same); text sorts as text.
    enc = LabelEncoder.fit(["10", "2", "2.0", "3"])
    assert enc.classes == [2, 3, 10]
    assert enc.encode([" 10", "2.0", "3"]).tolist() == [2, 0, 1]
    assert enc.decode([2, 0]) == [10, 2]
    text = LabelEncoder.fit(["b", "a", "1", "b"])
    assert text.classes == ["1", "a", "b"]
    assert json.loads(json.dumps(enc.classes)) == [2, 3, 10]


def test_label_encoder_unseen_label_names_line_and_known_classes():
    # A label the model never saw is refused with its line and the known classes.
    table = parse_csv("x,y\n1,cat\n2,emu\n", "`d.csv`")
    enc = LabelEncoder(["cat", "dog"])
    with pytest.raises(BackpropError, match=r"`d.csv` line 3: column 'y' has the label 'emu', which the model never saw"):
        enc.encode(table.strings("y"), table, "y")


@pytest.mark.parametrize(
    "labels, task",
    [
        (["a", "b", "a", "c"], "classify"),
        (["0", "1", "1", "0", "1", "0"], "classify"),
        (["1.5", "2.5", "1.5", "2.5"], "regress"),
        ([str(i) for i in range(30)] * 2, "regress"),  # 30 distinct integers: too many for classes
        (["1", "2", "3"], "regress"),  # as many values as rows
    ],
)
def test_detect_task(labels, task):
    # Text or few integer values -> classify; other numbers -> regress; a reason is given.
    got, reason = detect_task(labels)
    assert got == task and reason


def _classifier_meta():
    pre = Preprocessor("classify", ["a", "b"], "y", Standardizer([1.0, 2.0], [2.0, 4.0]),
                       encoder=LabelEncoder(["no", "yes"]))
    return pre, pre.to_metadata()


def test_preprocessor_metadata_round_trip_and_by_name_matching():
    # Metadata survives JSON; features are matched by name whatever the column order.
    pre, meta = _classifier_meta()
    assert meta == {"task": "classify", "features": ["a", "b"], "target": "y",
                    "scaler": {"mean": [1.0, 2.0], "scale": [2.0, 4.0]}, "classes": ["no", "yes"]}
    back = Preprocessor.from_metadata(json.loads(json.dumps(meta)))
    table = parse_csv("b,extra,a,y\n10,x,5,yes\n2,z,1,no\n")
    np.testing.assert_array_equal(back.transform(table), [[(5 - 1) / 2, (10 - 2) / 4], [0.0, 0.0]])
    assert back.targets(table).tolist() == [1, 0]
    np.testing.assert_array_equal(back.network_targets(np.array([1, 0])), [[0, 1], [1, 0]])


def test_preprocessor_missing_feature_columns_are_named():
    # Data lacking some of the model's features gets one error naming all of them.
    pre, _ = _classifier_meta()
    with pytest.raises(BackpropError, match=r"has no columns 'a', 'b'; its columns are 'c'"):
        pre.transform(parse_csv("c\n1\n"))


def test_regression_targets_are_standardised_and_restored():
    # network_targets standardises with the target scaler; decode undoes it exactly.
    pre = Preprocessor("regress", ["x"], "t", Standardizer([0.0], [1.0]),
                       target_scaler=Standardizer([100.0], [20.0]))
    z = pre.network_targets(np.array([120.0, 60.0]))
    np.testing.assert_allclose(z, [[1.0], [-2.0]])
    np.testing.assert_allclose(pre.decode(z), [120.0, 60.0])
    assert Preprocessor.from_metadata(pre.to_metadata()).target_scaler.mean.tolist() == [100.0]


@pytest.mark.parametrize(
    "meta, expected",
    [
        ({}, "has no feature list or task"),
        ({"task": "cluster", "features": ["a"]}, "`task` must be one of 'classify', 'regress'"),
        ({"task": "classify", "features": "a", "scaler": {}}, "`features` must be a non-empty list"),
        ({"task": "classify", "features": ["a"], "scaler": {"mean": [0.0], "scale": [1.0]}},
         "needs `classes`|`classes` must be a non-empty list"),
        ({"task": "regress", "features": ["a"], "scaler": {"mean": [0.0], "scale": [1.0]}},
         "`target_scaler` must be an object"),
        ({"task": "regress", "features": ["a", "b"], "scaler": {"mean": [0.0], "scale": [1.0]},
          "target_scaler": {"mean": [0.0], "scale": [1.0]}}, "one entry per feature"),
    ],
)
def test_preprocessor_refuses_bad_metadata(meta, expected):
    # Missing or malformed model metadata is one clear error prefixed with the source.
    with pytest.raises(BackpropError, match=expected) as info:
        Preprocessor.from_metadata(meta, "`m.safetensors`")
    assert str(info.value).startswith("`m.safetensors`")


def test_load_model_checks_network_against_metadata(tmp_path):
    # A model whose network size disagrees with its feature list is refused; a plain
    # Network.save file (no CLI metadata) says it was not written by `backprop train`.
    pre, meta = _classifier_meta()
    net = Network.from_sizes([3, 2], output_activation="softmax", loss="softmax_cross_entropy", seed=0)
    net.save(tmp_path / "bad.safetensors", meta)
    with pytest.raises(BackpropError, match="has 3 inputs and 2 outputs but the metadata describes 2 inputs"):
        load_model(tmp_path / "bad.safetensors")
    net.save(tmp_path / "plain.safetensors", {})
    with pytest.raises(BackpropError, match="not written by `backprop train`"):
        load_model(tmp_path / "plain.safetensors")
    good = Network.from_sizes([2, 2], output_activation="softmax", loss="softmax_cross_entropy", seed=0)
    good.save(tmp_path / "good.safetensors", meta)
    network, loaded = load_model(tmp_path / "good.safetensors")
    assert loaded.encoder.classes == ["no", "yes"] and network.n_inputs == 2
