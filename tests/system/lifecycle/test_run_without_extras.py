"""`volumed run` on an install without the kms and tpm extras (grpcio, protobuf, tpm2-pytss hidden from its
interpreter): volumes with static and nodeID keys open and mount as with them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests._fresh_python import run_python
from tests.system.lifecycle._node import cryptsetup_opens, node_id_key, static_key, volume_config

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node


def test_run_without_the_kms_and_tpm_extras(node: Node) -> None:
    node.write_config(
        volume_config("STATE", [node_id_key(0)]), volume_config("EPHEMERAL", [static_key(0, "ephemeral")])
    )
    argv = ["volumed", *node.run_argv()[1:]]
    code = f"import sys\nfrom volumed.cli import main\nsys.argv = {argv!r}\nmain()\n"
    result = run_python(code, hidden=("tpm2_pytss", "grpc", "google.protobuf"), timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "volumed[" not in result.stdout + result.stderr
    assert cryptsetup_opens(node.region("STATE"), f"{node.node_uuid}STATE".encode(), slot=0)
    assert cryptsetup_opens(node.region("EPHEMERAL"), b"ephemeral", slot=0)


def test_a_tpm_key_without_the_tpm_extra_names_the_extra(node: Node) -> None:
    """A TPM key on an install without volumed[tpm]: that key's reason names the extra, the volume opens with
    its other key; nothing crashes (the import error escaped the key resolution before)."""
    tpm = {"slot": 0, "tpm": {"options": {"pcrs": [7]}}}
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL", [tpm, static_key(1, "ephemeral")]))
    argv = ["volumed", *node.run_argv()[1:], "--tpm-tcti", "swtpm:host=127.0.0.1,port=1"]
    code = f"import sys\nfrom volumed.cli import main\nsys.argv = {argv!r}\nmain()\n"
    result = run_python(code, hidden=("tpm2_pytss",), timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output  # EPHEMERAL opened by its static key
    assert "Traceback" not in output, output
    assert "the tpm key kind needs the volumed[tpm] extra" in output, output
    assert cryptsetup_opens(node.region("EPHEMERAL"), b"ephemeral", slot=1)
