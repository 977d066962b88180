"""Errors raised by the activation backends."""

from __future__ import annotations


class ActivationError(Exception):
    """A volume cannot be activated, deactivated or inspected; the message names the mapping and the cause.

    Never carries key material: messages are built from names, paths and tool output only.
    """


class BackendUnavailableError(ActivationError):
    """The requested backend (for ``auto``: every backend) cannot run here; the message says what lacks."""


class ActivationBusyError(ActivationError):
    """The activated device is still in use (mounted or held open), so it was left active."""


class ActivationConflictError(ActivationError):
    """A mapping of that name is already active for a different device or segment; it was left alone."""
