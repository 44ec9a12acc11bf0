"""Errors the application reports to the user as a message (never a traceback)."""


class AppError(Exception):
    """Base class for user-facing application errors."""


class SourceError(AppError):
    """A source cannot be opened or has failed (missing camera, unreadable file, bad folder)."""


class ConfigError(AppError):
    """The configuration file or a command-line flag is invalid; the message names the key."""


class RecordingError(AppError):
    """A recording cannot be written (disk full, no encoder, bad path)."""
