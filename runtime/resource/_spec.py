"""Spec base classes: frozen pydantic models, and the sensitive flavour whose values never show in reprs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Spec(BaseModel):
    """Base class for resource specs.

    Specs are frozen so one resource value can be shared by the state, every event and every watcher without
    copies. Use tuples rather than lists for sequence fields so nested values stay immutable too. Bytes
    round-trip through JSON as base64 (the persistent backend stores specs as JSON); keep secrets in plain
    ``bytes`` fields of a `SensitiveSpec`, not in pydantic ``SecretBytes``, which JSON masks irreversibly.
    """

    # defer_build: a model's validator is built on first use, not at import; a node uses few of the specs it
    # imports, and building them all was a third of `import volumed.controllers` (issue 16).
    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64", defer_build=True
    )


class SensitiveSpec(Spec):
    """A spec that holds secrets: its values never appear in ``repr``/``str`` (and so never in logs).

    A definition whose spec model derives from this class is ``sensitive``; API layers refuse to return such
    resources unless a privileged caller asks (see ``volumed.runtime.state.SensitiveGuard``).
    """

    # Validation errors quote the rejected input by default; a secret must not reach a log that way either.
    model_config = ConfigDict(hide_input_in_errors=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"

    def __str__(self) -> str:
        return self.__repr__()

    def __repr_args__(self) -> Any:
        return []


def is_frozen_model(model: type[BaseModel]) -> bool:
    """Whether instances of ``model`` are immutable (``model_config['frozen']``)."""
    return bool(model.model_config.get("frozen", False))


def is_sensitive_model(model: type[BaseModel]) -> bool:
    """Whether ``model`` holds secrets (derives from `SensitiveSpec`)."""
    return issubclass(model, SensitiveSpec)
