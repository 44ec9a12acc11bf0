"""Errors the engine raises for problems a user can fix (bad input, missing weights, bad config).

Command-line entry points catch :class:`FusionError` and print its message instead of a traceback.
"""


class FusionError(Exception):
    """Base class for every user-facing engine error."""


class FusionInputError(FusionError, ValueError):
    """An input image is unusable: empty, wrong dtype, wrong shape, or sizes that do not match."""


class WeightsError(FusionError, FileNotFoundError):
    """A weights file is missing, unreadable, or does not fit the model it is loaded into."""


class UnknownMethodError(FusionError, KeyError):
    """A fusion method name that is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class BackendUnavailableError(FusionError, RuntimeError):
    """A requested inference backend cannot run on this machine (no CUDA, no torch-tensorrt, ...)."""
