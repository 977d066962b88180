"""``maxSize`` may be a percentage (Talos' PercentageSize): parsed, refused and compared as Talos does."""

from __future__ import annotations

import pytest

from volumed.config import check_config

HEAD = "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\n"
USER = "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: data\n"


@pytest.mark.parametrize(("text", "percent"), [("80%", 80), ("50.9%", 50), ("0%", 0), ("100%", 100)])
def test_a_percentage_is_read_and_truncated(text: str, percent: int) -> None:
    machine, issues = check_config(HEAD + f"provisioning: {{maxSize: '{text}'}}\n")
    assert not issues
    assert machine is not None
    document = machine.volume("EPHEMERAL")
    assert document is not None
    provisioning = document.provisioning
    assert (provisioning.max_percent, provisioning.max_bytes, provisioning.max_is_relative) == (
        percent,
        0,
        True,
    )
    assert str(provisioning.max_size) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("101%", "percentage must be between 0 and 100"),
        ("-1%", "percentage must be between 0 and 100"),
        ("5%0", "percentage must end with '%'"),
        ("abc%", "invalid percentage value"),
        ("inf%", "invalid percentage value"),
        ("%", "invalid percentage value"),
    ],
)
def test_a_bad_percentage_is_refused_in_talos_words(text: str, message: str) -> None:
    _, issues = check_config(HEAD + f"provisioning: {{maxSize: '{text}'}}\n")
    assert [str(issue) for issue in issues] == [
        f"VolumeConfig/EPHEMERAL: provisioning.maxSize: invalid size: {message}"
    ]


def test_a_percentage_is_not_compared_with_min_size() -> None:
    """Talos checks minSize <= maxSize only for a maxSize in bytes."""
    _, issues = check_config(HEAD + "provisioning: {minSize: 100GiB, maxSize: '10%'}\n")
    assert not issues
    _, issues = check_config(HEAD + "provisioning: {minSize: 2GiB, maxSize: 1GiB}\n")
    assert [str(issue) for issue in issues] == [
        "VolumeConfig/EPHEMERAL: provisioning: min size is greater than max size"
    ]


def test_a_user_volume_takes_a_percentage_too() -> None:
    machine, issues = check_config(USER + "provisioning: {diskSelector: {match: 'true'}, maxSize: 25%}\n")
    assert not issues
    assert machine is not None
    assert machine.user_volumes[0].provisioning.max_percent == 25
