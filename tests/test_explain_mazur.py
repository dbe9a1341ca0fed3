"""`backprop explain` on seed 002's worked example: every number the tutorial prints.

The table below is typed in from the tutorial (seed 002), not produced by this library. Each
value is compared at the precision the tutorial prints it (half a unit in its last place).
"""

from decimal import Decimal

import pytest

from backprop.cli import main
from backprop.explain.example import derivation

# (where in Derivation.to_dict(), printed value); the tutorial's own names in the comments
BLOG = [
    (("forward", "net_h1"), "0.3775"),
    (("forward", "out_h1"), "0.593269992"),
    (("forward", "out_h2"), "0.596884378"),
    (("forward", "net_o1"), "1.105905967"),
    (("forward", "out_o1"), "0.75136507"),
    (("forward", "out_o2"), "0.772928465"),
    (("errors", "E_o1"), "0.274811083"),
    (("errors", "E_o2"), "0.023560026"),
    (("errors", "E_total"), "0.298371109"),
    (("backward", "o1", "dE/dout"), "0.74136507"),  # dE_total/dout_o1
    (("backward", "o1", "dout/dnet"), "0.186815602"),  # dout_o1/dnet_o1
    (("factors", "w5", "dE/dout"), "0.74136507"),
    (("factors", "w5", "dout/dnet"), "0.186815602"),
    (("factors", "w5", "dnet/dw"), "0.593269992"),  # dnet_o1/dw5 = out_h1
    (("gradients", "w5"), "0.082167041"),
    (("updated", "w5"), "0.35891648"),
    (("updated", "w6"), "0.408666186"),
    (("updated", "w7"), "0.511301270"),
    (("updated", "w8"), "0.561370121"),
    (("deltas", "o1"), "0.138498562"),  # dE_o1/dnet_o1
    (("network", "weights", "w5", "value"), "0.40"),  # dnet_o1/dout_h1 = w5
    (("backward", "h1", "terms", "o1"), "0.055399425"),  # dE_o1/dout_h1
    (("backward", "h1", "dE/dout"), "0.036350306"),  # dE_total/dout_h1
    (("backward", "h1", "dout/dnet"), "0.241300709"),  # dout_h1/dnet_h1
    (("factors", "w1", "dE/dout"), "0.036350306"),
    (("factors", "w1", "dout/dnet"), "0.241300709"),
    (("factors", "w1", "dnet/dw"), "0.05"),  # dnet_h1/dw1 = i1
    (("gradients", "w1"), "0.000438568"),
    (("updated", "w1"), "0.149780716"),
    (("updated", "w2"), "0.19956143"),
    (("updated", "w3"), "0.24975114"),
    (("updated", "w4"), "0.29950229"),
]
# The two known exceptions: (where, printed by the tutorial, the correct value)
ROUNDED_BY_HAND = (("backward", "h1", "terms", "o2"), "-0.019049119", -0.0190491183)
OLDER_UPDATE_ORDER = (("after", "E_total"), "0.291027924", 0.291027774)


def _get(d: dict, path):
    for key in path:
        d = d[key]
    return d


def _tol(printed: str) -> float:
    return 0.5 * 10.0 ** Decimal(printed).as_tuple().exponent + 1e-15


@pytest.fixture(scope="module")
def seed002():
    return derivation().to_dict()


@pytest.mark.parametrize("path, printed", BLOG, ids=["/".join(p) for p, _ in BLOG])
def test_every_printed_number(seed002, path, printed):
    # The derivation's number agrees with the tutorial's to the tutorial's printed precision.
    assert abs(_get(seed002, path) - float(printed)) <= _tol(printed)


def test_hand_rounded_term_is_exact_not_the_printed_digit(seed002):
    # The tutorial's -0.019049119 was rounded by hand; the exact term is -0.0190491183.
    path, printed, exact = ROUNDED_BY_HAND
    value = _get(seed002, path)
    assert abs(value - exact) <= 5e-11
    assert abs(value - float(printed)) > _tol(printed)


def test_error_after_the_step_is_the_correct_algorithms(seed002):
    # 0.291027774 (gradients from the old weights), not the tutorial's 0.291027924.
    path, printed, correct = OLDER_UPDATE_ORDER
    assert abs(_get(seed002, path) - correct) <= 5e-10
    assert abs(_get(seed002, path) - float(printed)) > 1e-7


def test_cli_default_prints_the_example_with_the_exceptions_explained(capsys):
    # `backprop explain` with no options prints the seed's numbers as the tutorial prints them,
    # and notes both exceptions with both values.
    assert main(["explain"]) == 0
    text = capsys.readouterr().out
    for _, printed in BLOG:
        if len(printed.split(".")[1]) == 9 or printed in ("0.3775", "0.05"):
            assert printed.rstrip("0") in text, printed
    for snippet in ("-0.019049119", "-0.0190491183", "0.291027924", "0.291027774"):
        assert snippet in text
    assert "0.036350306 * 0.241300709 * 0.05" not in text  # text uses the middle dot, not *
    assert "0.036350306·0.241300709·0.05 = 0.000438568" in text


def test_frozen_biases_keep_the_seeds_names(seed002):
    # Biases b1 (hidden) and b2 (output) are shared and frozen: named b1, b2, never updated.
    assert seed002["network"]["biases"] == {
        "b1": {"value": 0.35, "neurons": ["h1", "h2"], "trained": False},
        "b2": {"value": 0.6, "neurons": ["o1", "o2"], "trained": False},
    }
    assert not any(k.startswith("b") for k in seed002["updated"])
