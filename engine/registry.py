"""Build fusion methods by name (the names the config, the CLIs and the viewer's menu use).

Modules register their classes with :func:`register_method`; :func:`create_method` imports the
built-in method modules lazily so that importing ``engine`` stays cheap (no torch until M2PN is asked for).
"""

from __future__ import annotations

import importlib
from typing import Callable, TypeVar

from .errors import UnknownMethodError
from .methods.base import FusionMethod

_REGISTRY: dict[str, type[FusionMethod]] = {}

# Modules that register built-in methods when imported. A module missing here is simply skipped
# (during development a method family may not exist yet); an import error inside one is raised.
BUILTIN_METHOD_MODULES: tuple[str, ...] = (
    "engine.methods.classical",
    "engine.methods.display",
    "engine.m2pn.method",
    "engine.realtime.method",
    "engine.egmt.method",
)

T = TypeVar("T", bound=type[FusionMethod])


def register_method(name: str, description: str = "") -> Callable[[T], T]:
    """Class decorator: make a :class:`FusionMethod` subclass buildable as ``name``."""

    def decorate(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"fusion method {name!r} is registered twice")
        cls.name = name
        if description:
            cls.description = description
        _REGISTRY[name] = cls
        return cls

    return decorate


def _load_builtins() -> None:
    for module in BUILTIN_METHOD_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise


def available_methods() -> dict[str, str]:
    """Registered method names -> one-line descriptions, sorted by name."""
    _load_builtins()
    return {name: _REGISTRY[name].description for name in sorted(_REGISTRY)}


def create_method(name: str, **options) -> FusionMethod:
    """Instantiate the method registered as ``name`` with keyword ``options``.

    Raises:
        UnknownMethodError: with the list of known names.
    """
    _load_builtins()
    try:
        cls = _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise UnknownMethodError(f"unknown fusion method {name!r}; available: {known}") from None
    return cls(**options)
