"""Backend selection on this very machine (root: probing opens /dev/mapper/control, /dev/fuse)."""

from __future__ import annotations

import pytest

from tests._tools import require_root
from volumed.storage.activation import (
    BackendUnavailableError,
    DmActivator,
    FuseActivator,
    backend_availability,
    select_activator,
)


def test_auto_on_this_machine_picks_what_works_and_says_why() -> None:
    require_root()
    reasons = backend_availability()
    chosen = select_activator("auto")
    if reasons["dm"] is None:
        assert isinstance(chosen, DmActivator)
    else:
        # this development machine and CI: /dev/mapper/control exists, the kernel has no device-mapper
        assert "/dev/mapper/control" in reasons["dm"]
        assert reasons["fuse"] is None
        assert isinstance(chosen, FuseActivator)
        with pytest.raises(
            BackendUnavailableError, match=r"no usable activation backend \(dm\): dm: /dev/mapper"
        ):
            select_activator("dm")
