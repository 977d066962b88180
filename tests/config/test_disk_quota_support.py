"""``machine.features.diskQuotaSupport`` of the v1alpha1 machine config: EPHEMERAL (xfs) is mounted with
``prjquota`` when it is true, as Talos v1.12 does (``volumeconfig/system_volumes.go``: the EPHEMERAL mount's
``ProjectQuotaSupport`` is ``cfg.Machine().Features().DiskQuotaSupportEnabled()``, which is
``pointer.SafeDeref``: false when the field is absent; ``talosctl gen config`` writes ``true`` into the
configs it generates)."""

from __future__ import annotations

import pytest

from volumed.config import check_config
from volumed.controllers.block._mount_options import mount_options
from volumed.controllers.config._translate import desired_volumes

MACHINE = """\
version: v1alpha1
machine:
  type: worker
  token: abc.def
{features}cluster:
  clusterName: demo
"""
USER_VOLUME = """\
---
apiVersion: v1alpha1
kind: UserVolumeConfig
name: data
provisioning: {diskSelector: {match: '!system_disk'}, minSize: 1GiB}
"""


def quota_of(text: str) -> dict[str, bool]:
    machine, issues = check_config(text)
    assert not issues, issues
    assert machine is not None
    return {v.volume_id: v.config.project_quota_support for v in desired_volumes(machine)}


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        ("  features:\n    diskQuotaSupport: true\n    rbac: true\n", True),
        ("  features:\n    diskQuotaSupport: false\n", False),
        ("  features:\n    rbac: true\n", False),  # absent: Talos' default (SafeDeref) is false
        ("", False),
    ],
    ids=["true", "false", "absent", "no-features"],
)
def test_ephemeral_takes_disk_quota_support(features: str, expected: bool) -> None:
    found = quota_of(MACHINE.format(features=features) + USER_VOLUME)
    assert found == {"STATE": False, "EPHEMERAL": expected, "u-data": False}


def test_ephemeral_is_mounted_with_prjquota_when_set() -> None:
    machine, issues = check_config(MACHINE.format(features="  features: {diskQuotaSupport: true}\n"))
    assert not issues
    assert machine is not None
    configs = {v.volume_id: v.config for v in desired_volumes(machine)}
    assert mount_options(configs["EPHEMERAL"]) == ("prjquota",)
    assert mount_options(configs["STATE"]) == ()
    # the setting is what volumed used of the v1alpha1 document
    assert "v1alpha1/machine.features.diskQuotaSupport" in machine.labels
    assert machine.ignored == 0


def test_a_v1alpha1_document_without_the_setting_is_still_ignored() -> None:
    machine, issues = check_config(MACHINE.format(features="  features: {diskQuotaSupport: false}\n"))
    assert not issues
    assert machine is not None
    assert machine.ignored == 1
    assert not any("diskQuotaSupport" in label for label in machine.labels)


@pytest.mark.parametrize("value", ['"true"', "1", "[true]"])
def test_a_value_that_is_not_a_boolean_is_an_error(value: str) -> None:
    machine, issues = check_config(MACHINE.format(features=f"  features:\n    diskQuotaSupport: {value}\n"))
    assert machine is None
    assert [(i.path, i.document) for i in issues] == [("machine.features.diskQuotaSupport", "v1alpha1")], (
        issues
    )


# yaml.v3 decoding into a Go bool (decode.go ``scalar``, case ``reflect.Bool``): a value that resolves to a
# bool (true/True/TRUE/false/False/FALSE, unquoted), or any string, quoted or not, among YAML 1.1's
# y/Y/yes/Yes/YES/on/On/ON (true) and n/N/no/No/NO/off/Off/OFF (false); a null leaves the *bool unset.
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("y", True), ("Y", True), ("'y'", True), ('"yes"', True), ("'On'", True), ("!!str YES", True),
        ("yes", True), ("ON", True), ("TRUE", True), ("True", True),
        ("n", False), ("N", False), ('"no"', False), ("'OFF'", False), ("Off", False), ("FALSE", False),
        ("null", False), ("~", False), ("", False),
    ],
)  # fmt: skip
def test_what_talos_accepts_into_a_bool_is_accepted(value: str, expected: bool) -> None:
    features = f"  features:\n    diskQuotaSupport: {value}\n"
    found = quota_of(MACHINE.format(features=features) + USER_VOLUME)
    assert found["EPHEMERAL"] is expected


@pytest.mark.parametrize("value", ["'true'", "!!str true", "''", "t", "0", "yES", "[]", "{}", "'yes '"])
def test_what_talos_refuses_into_a_bool_is_refused(value: str) -> None:
    machine, issues = check_config(MACHINE.format(features=f"  features:\n    diskQuotaSupport: {value}\n"))
    assert machine is None
    assert [(i.path, i.document, i.message) for i in issues] == [
        ("machine.features.diskQuotaSupport", "v1alpha1", "expected a boolean")
    ], issues
