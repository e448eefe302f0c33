"""Training strategies (Sec. 3.2): which data points a run trains on and which tails it scores.

A registry like :mod:`kdkge.models` and :mod:`kdkge.losses`.  Adding a strategy = one file in this
package defining a :class:`~kdkge.strategies.base.TrainingStrategy` subclass with a unique ``name``,
decorated with :func:`~kdkge.strategies.base.register`, plus ``conf/strategy/<name>.yaml`` with ``name: <name>``.  Every module here is
imported when the package is, so no list needs editing.

==========  =====================================================================================
1vsall      one data point per triple and its reciprocal, scored against all entities (the paper's)
kvsall      one data point per distinct ``(h, r)`` with all its training tails, against all entities
negsamp     1vsAll data points, scored against the true tail and ``k`` uniformly drawn entities
==========  =====================================================================================
"""

from __future__ import annotations

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):  # every strategy module registers itself (kdkge.strategies.base.register)
    importlib.import_module(f"{__name__}.{_info.name}")

from .base import STRATEGY_CLASSES, TrainingStrategy, register  # noqa: E402
from .all_tails import AllTailsTargets, KvsAll, OneVsAll  # noqa: E402
from .negative_sampling import NegativeSampler, NegativeSampling  # noqa: E402

__all__ = ["STRATEGY_CLASSES", "AllTailsTargets", "KvsAll", "NegativeSampler", "NegativeSampling", "OneVsAll",
           "TrainingStrategy", "available_strategies", "build_strategy", "register"]


def available_strategies() -> tuple[str, ...]:
    """The registered strategy names, in registration order (modules alphabetically: ``1vsall``, ``kvsall``, ``negsamp``, then added ones)."""
    return tuple(STRATEGY_CLASSES)


def _choices() -> str:
    names = list(STRATEGY_CLASSES)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def build_strategy(spec) -> TrainingStrategy:
    """The strategy of a :class:`~kdkge.experiment.RunSpec` (``spec.strategy``, with its options)."""
    if spec.strategy not in STRATEGY_CLASSES:
        raise ValueError(f"strategy={spec.strategy!r} is unknown: use {_choices()}")
    return STRATEGY_CLASSES[spec.strategy].from_spec(spec)
