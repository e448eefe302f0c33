"""The one registration rule shared by the model, loss and strategy registries (a leaf module)."""

from __future__ import annotations

from collections.abc import Callable


def registrar(table: dict[str, type], kind: str) -> Callable[[type], type]:
    """A class decorator that adds a class to ``table`` under its ``name``.

    A class without a non-empty ``name`` and a second class under a taken name are refused with a
    ``TypeError`` (registering the same class again is harmless: modules may be imported twice).
    """

    def register(cls: type) -> type:
        if not getattr(cls, "name", ""):
            raise TypeError(f"{cls.__qualname__} needs a non-empty `name`")
        if cls.name in table and table[cls.name] is not cls:
            raise TypeError(f"{kind} name {cls.name!r} is registered twice")
        table[cls.name] = cls
        return cls

    register.__doc__ = f"Class decorator: make a {kind} available under ``cls.name``."
    return register
