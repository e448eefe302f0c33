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


_STORED_WIDTH: dict[tuple, int] = {}


def check_builds(name: str, dim: int, **options) -> int:
    """The model's stored width, or what :func:`build_model` raises for ``(name, dim, options)`` (e.g. a
    Kronecker model with a non-square d).  Builds a 2-entity, 2-relation model on the meta device
    (nothing allocated, any dim), once per distinct arguments (a planned sweep checks thousands)."""
    key = (name, dim, repr(sorted(options.items())))
    if key not in _STORED_WIDTH:
        import torch

        with torch.device("meta"):
            _STORED_WIDTH[key] = build_model(name, 2, 2, dim, **options).stored_width
    return _STORED_WIDTH[key]
