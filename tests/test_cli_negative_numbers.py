"""Command-line options that take a list of numbers accept negative numbers (issue 22, item 5)."""

from __future__ import annotations

import argparse

import pytest

from backprop.cli import build_parser, join_negative_values, main

NUMBER_LISTS = ("--weights", "--biases", "--inputs", "--targets", "--bias")  # explain's number-list options


def _number_list_options(parser) -> set[str]:
    """Every option anywhere in the CLI whose type parses a comma-separated list of floats."""
    found = set()
    stack = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
            elif callable(action.type) and action.option_strings:
                try:
                    value = action.type("1.5,2.5")
                except (argparse.ArgumentTypeError, ValueError, TypeError):
                    continue
                if isinstance(value, list) and value == [1.5, 2.5]:
                    found.add(action.option_strings[0])
    return found


def test_the_number_list_options_are_the_ones_tested():
    """The CLI's number-list options are exactly NUMBER_LISTS, so a new one must be added here."""
    assert _number_list_options(build_parser()) == set(NUMBER_LISTS)


@pytest.mark.parametrize("option", NUMBER_LISTS)
@pytest.mark.parametrize("form", ["space", "equals"])
def test_negative_number_lists_parse(option, form):
    """`OPT -0.5,0.25` and `OPT=-0.5,0.25` both give [-0.5, 0.25]."""
    argv = ["explain", option, "-0.5,0.25"] if form == "space" else ["explain", f"{option}=-0.5,0.25"]
    args = build_parser().parse_args(join_negative_values(argv))
    assert getattr(args, option[2:]) == [-0.5, 0.25]


def test_a_plain_negative_number_and_the_double_dash_are_left_alone():
    """A single negative number is joined too; tokens after `--` are never rewritten."""
    assert join_negative_values(["explain", "--lr", "-1"]) == ["explain", "--lr=-1"]
    assert join_negative_values(["x", "--", "--a", "-1,2"]) == ["x", "--", "--a", "-1,2"]
    assert join_negative_values(["train", "--quiet", "data.csv"]) == ["train", "--quiet", "data.csv"]


def test_explain_runs_with_negative_weights_end_to_end(capsys):
    """`backprop explain --weights -0.99,...` runs and uses those weights (they appear in the output)."""
    weights = "-0.99,0.23,-0.15,0.5,0.31,-0.27,0.12,0.44"
    rc = main(["explain", "--weights", weights, "--biases", "-0.1,0.2", "--inputs", "-1,0.5",
               "--targets", "-0.3,1", "--loss", "mse", "--output-activation", "identity"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "-0.99" in out and "-0.27" in out
