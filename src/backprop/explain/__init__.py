"""Worked derivations of one backpropagation step: ``explain(network, x, y) -> Derivation``.

``trace`` records the step from the engine's own layers; ``render`` writes it as text,
Markdown, LaTeX or JSON; ``diagram`` draws the network before and after (matplotlib);
``example`` is seed 002's worked example. See docs/explain.md.
"""

from .trace import MAX_WEIGHTS, Derivation, explain

__all__ = ["explain", "Derivation", "MAX_WEIGHTS"]
