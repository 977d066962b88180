"""The key kinds whose libraries are optional, and the extra of the ``volumed`` package that installs each.

The core install leaves out grpcio and protobuf (the ``kms`` key kind and KMS server: ``volumed[kms]``) and
tpm2-pytss (the ``tpm`` key kind: ``volumed[tpm]``). Each of those packages of ``volumed.keys`` imports its
libraries through :func:`require_extra` first, so that a missing one is an error naming the extra to install
rather than a bare ``No module named ...``.
"""

from __future__ import annotations

import importlib


class MissingExtraError(ImportError):
    """A library of an optional part of volumed is not installed (or does not load); names the extra."""


def require_extra(*modules: str, what: str, extra: str) -> None:
    """Import ``modules``, or raise MissingExtraError saying that ``what`` needs ``volumed[extra]``.

    The message keeps the import error's own words: a library that is installed but does not load (tpm2-pytss
    without its libtss2 shared objects) is told apart from one that is not installed.
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise MissingExtraError(
                f"{what} needs the volumed[{extra}] extra: pip install 'volumed[{extra}]' ({error})",
                name=module,
            ) from error
