"""EPHEMERAL with ``machine.features.diskQuotaSupport: true`` is mounted with ``prjquota`` (real xfs, real
mount), as Talos v1.12 mounts it. The Mounter's mount call is watched (the real mount still runs) to check the
options it is given. A kernel without xfs quota support (this machine's) refuses that mount: EPHEMERAL then
stays unmounted with a warning that names the option and why, never mounted without it, and mounts without
it once the config sets the feature false."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from structlog.testing import capture_logs

from tests.system.lifecycle._node import describe, volume_config
from tests.system.lifecycle.test_project_quota_mount import kernel_has_xfs_quota, mount_of
from volumed.controllers.block import _mounter

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from tests.system.lifecycle._node import Node


def machine_document(quota: bool) -> dict[str, Any]:
    return {"version": "v1alpha1", "machine": {"type": "worker", "features": {"diskQuotaSupport": quota}}}


async def test_disk_quota_support_mounts_ephemeral_with_prjquota(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    supported = kernel_has_xfs_quota(node.workdir)
    calls: list[tuple[str, tuple[str, ...]]] = []
    real_mount = _mounter.mount

    def watched(source: str, target: Path, **kwargs: Any) -> None:
        calls.append((str(target), tuple(kwargs.get("options", ()))))
        real_mount(source, target, **kwargs)

    monkeypatch.setattr(_mounter, "mount", watched)
    node.write_config(machine_document(True), volume_config("STATE"), volume_config("EPHEMERAL"))
    ephemeral, state = str(node.target("EPHEMERAL")), str(node.target("STATE"))
    with capture_logs() as logs:
        async with node.boot(settle=False) as boot:
            if supported:  # both, for STATE's call below: the two mount independently, in either order
                await boot.wait_for(
                    lambda s: {"EPHEMERAL", "STATE"} <= s.mounted, what="EPHEMERAL and STATE mounted"
                )
                options = mount_of(node.target("EPHEMERAL"))
                assert options is not None
                assert "prjquota" in options, options
            else:
                await boot.wait_for(
                    lambda _: any(r["event"] == "cannot mount EPHEMERAL (retrying)" for r in logs),
                    what="the refused mount's warning",
                )
                snapshot = await boot.wait_for(lambda s: "STATE" in s.mounted, what="STATE mounted")
                assert snapshot.statuses["EPHEMERAL"].phase.value == "ready", describe(snapshot)
                assert "EPHEMERAL" not in (await boot.now()).mounted, describe(snapshot)
                assert mount_of(node.target("EPHEMERAL")) is None  # not mounted without the option
                (warning,) = [r for r in logs if r["event"] == "cannot mount EPHEMERAL (retrying)"]
                assert (
                    "it was mounted with prjquota (project quota support is configured for it"
                    in warning["error"]
                )
                assert "without xfs quota support" in warning["error"]
            assert (ephemeral, ("prjquota",)) in calls, calls
            assert all(options == ("prjquota",) for target, options in calls if target == ephemeral), calls
            assert (state, ()) in calls, calls

            calls.clear()
            node.write_config(machine_document(False), volume_config("STATE"), volume_config("EPHEMERAL"))
            if not supported:
                await boot.wait_for(lambda s: "EPHEMERAL" in s.mounted, what="EPHEMERAL mounted without")
                options = mount_of(node.target("EPHEMERAL"))
                assert options is not None
                assert "prjquota" not in options, options
                assert calls == [(ephemeral, ())], calls
