"""Model registry.  Adding a model = one file in this package defining a ``@register``-ed
:class:`~kdkge.models.base.KGEModel` subclass with a unique ``name``, plus ``conf/model/<name>.yaml``.
Every module in this package is imported on first use, so no list needs editing.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..registries import registrar

MODELS: dict[str, type] = {}


#: Class decorator: make a model available under ``cls.name`` (:func:`kdkge.registries.registrar`).
register = registrar(MODELS, "model")


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")


def available_models() -> list[str]:
    _discover()
    return sorted(MODELS)


def build_model(name: str, num_entities: int, num_relations: int, dim: int, stack: int = 1, **options):
    """Instantiate the registered model ``name`` (options are its extra constructor arguments)."""
    _discover()
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: available models are {', '.join(sorted(MODELS))}")
    return MODELS[name].build(num_entities, num_relations, dim, stack=stack, **options)
