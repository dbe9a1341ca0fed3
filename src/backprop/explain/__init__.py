"""Worked derivations of one backpropagation step: ``explain(network, x, y) -> Derivation``.

``trace`` records the step from the engine's own layers; ``render`` writes it as text,
Markdown, LaTeX or JSON; ``diagram`` draws the network before and after (matplotlib);
``build`` makes a network from the seed's weight numbering; ``example`` is seed 002's worked
example; ``saved`` reads one CSV row for a saved model. See docs/explain.md.

The package itself is callable, so that ``backprop.explain(network, x, y)`` works while
``backprop.explain.trace`` and friends stay importable as modules.
"""

import sys
import types

from .trace import MAX_WEIGHTS, Derivation, explain

__all__ = ["explain", "Derivation", "MAX_WEIGHTS"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs) -> Derivation:
        return explain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
