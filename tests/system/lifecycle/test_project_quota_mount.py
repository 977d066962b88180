"""A user volume with filesystem.projectQuotaSupport is mounted with ``prjquota`` (real xfs, real mount).

Talos mounts it so (fsopen.WithProjectQuota). volumed validated the field and mounted without it. A kernel
built without xfs quota support (CONFIG_XFS_QUOTA unset, as this machine's) refuses that mount: the volume
then stays unmounted, warned about and retried, never mounted without the option it asked for, and mounts
once the config drops projectQuotaSupport."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from structlog.testing import capture_logs

from tests._tools import require_tool
from tests.system.lifecycle._node import describe, user_volume_config, volume_config
from volumed.storage.filesystem import read_mounts

if TYPE_CHECKING:
    from pathlib import Path

    from tests.system.lifecycle._node import Node


def kernel_has_xfs_quota(workdir: Path) -> bool:
    """Whether this kernel mounts xfs with prjquota: tried on a scratch filesystem."""
    image, target = workdir / "probe.img", workdir / "probe"
    with image.open("wb") as file:
        file.truncate(300 << 20)
    subprocess.run([require_tool("mkfs.xfs"), "-q", str(image)], check=True)
    target.mkdir()
    probe = subprocess.run(
        [require_tool("mount"), "-o", "loop,prjquota", str(image), str(target)], check=False
    )
    if probe.returncode == 0:
        subprocess.run([require_tool("umount"), str(target)], check=True)
    image.unlink()
    return probe.returncode == 0


def quota_volume(quota: bool) -> dict[str, object]:
    document = user_volume_config("data", filesystem="xfs", min_size="200MiB")
    document["filesystem"] = {"type": "xfs", "projectQuotaSupport": quota}
    return document


def mount_of(target: Path) -> tuple[str, ...] | None:
    """The mount's filesystem options (mountinfo's super options), None when nothing is mounted there."""
    found = [m for m in read_mounts() if m.target == str(target)]
    return found[-1].super_options if found else None


async def test_project_quota_support_mounts_with_prjquota(node: Node) -> None:
    supported = kernel_has_xfs_quota(node.workdir)
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"), quota_volume(True))
    target = node.target("u-data")
    with capture_logs() as logs:
        async with node.boot(settle=False) as boot:
            if supported:
                await boot.wait_for(lambda s: "u-data" in s.mounted, what="u-data mounted")
                options = mount_of(target)
                assert options is not None
                assert "prjquota" in options, options
                return
            snapshot = await boot.wait_for(
                lambda s: (
                    s.statuses.get("u-data") is not None and s.statuses["u-data"].phase.value == "ready"
                ),
                what="u-data ready",
            )
            await boot.wait_for(
                lambda _: any(r["event"] == "cannot mount u-data (retrying)" for r in logs),
                what="the refused mount's warning",
            )
            assert "u-data" not in (await boot.now()).mounted, describe(snapshot)
            assert mount_of(target) is None  # not mounted without the option it asked for
            node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"), quota_volume(False))
            await boot.wait_for(lambda s: "u-data" in s.mounted, what="u-data mounted without prjquota")
            options = mount_of(target)
            assert options is not None
            assert "prjquota" not in options, options
