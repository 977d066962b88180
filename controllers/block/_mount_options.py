"""The mount options a volume's config asks for (Talos' fsopen options of its MountSpec)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from volumed.resources import VolumeConfigSpec

PROJECT_QUOTA: Final = "prjquota"
"""xfs' project quota accounting and enforcement (Talos: ``fsopen.WithProjectQuota``)."""


def mount_options(config: VolumeConfigSpec) -> tuple[str, ...]:
    """``prjquota`` for a volume whose filesystem has ``projectQuotaSupport``; nothing else (Talos passes no
    other filesystem option for a volume)."""
    return (PROJECT_QUOTA,) if config.project_quota_support else ()
