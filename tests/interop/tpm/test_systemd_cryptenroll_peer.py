"""A key slot enrolled by the real ``systemd-cryptenroll --tpm2-public-key= --tpm2-signature=`` is a peer
on the same LUKS2 header: ``volumed run --once`` leaves its key slot and its ``systemd-tpm2`` token alone,
byte for byte, while volumed's own configured slots converge around it; a config that names the peer's slot,
or whose token would take the peer's token id, is reported, not applied.

The node is the lifecycle tests' (fuse backend, image files). The UKI artefacts are made by systemd-measure
and PCR 11 is measured as a UKI boot leaves it at enter-machined (tests/_uki.py), on swtpm;
systemd-cryptenroll (systemd 252) seals to that swtpm through its TCTI (``--tpm2-device=swtpm:...``) under
systemd's signed policy (PolicyPCR(11) approved by the UKI key, then PolicyPCR(7)). That the peer still
unlocks is shown without volumed: its blob is unsealed under systemd's policy with tpm2-tools and cryptsetup
opens its key slot with the result (cryptsetup's systemd-tpm2 token plugin says "TPM2 device not found" on
this machine, with SYSTEMD_TPM2_DEVICE set or not: it finds no kernel TPM device).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from typing import TYPE_CHECKING, Any, Final

import pytest

from tests._tools import require_tool
from tests._uki import UKI, make_uki, measure_uki_boot
from tests.interop.tpm.conftest import FIRMWARE_PCR7_EVENT
from tests.interop.tpm.test_tpm2_tools import Tools
from tests.system.lifecycle._node import (
    Node,
    Region,
    cryptsetup_opens,
    luks_dump,
    static_key,
    user_volume_config,
    volume_config,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests._swtpm import Swtpm

pytestmark = pytest.mark.interop

RECOVERY: Final = "recovery passphrase"
RUN_LIMIT: Final = 120.0
# systemd 252's primary key (tpm2-util.c): ECC P-256, AES-128-CFB, owner hierarchy, empty unique field.
SYSTEMD_PRIMARY_ATTRIBUTES: Final = "restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth"
UKI_KEY_ATTRIBUTES: Final = "decrypt|sign|userwithauth"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    """A node with a system disk (Talos layout) and an empty data disk; cleaned up like a final power-off."""
    created = Node.create(tmp_path / "node")
    try:
        yield created
    finally:
        created.clean_up()
        left = created.leftovers()
        assert not left, f"could not clean up: {left}"


def signed_tpm_key(slot: int) -> dict[str, Any]:
    return {"slot": slot, "tpm": {"options": {"pcrs": [7]}}}


def documents(*keys: dict[str, Any]) -> list[dict[str, Any]]:
    """STATE and EPHEMERAL unencrypted, u-data encrypted with ``keys``; nothing grows."""
    data = user_volume_config("data", list(keys))
    data["provisioning"].update({"minSize": "64MiB", "maxSize": "64MiB", "grow": False})
    ephemeral = volume_config("EPHEMERAL")
    ephemeral["provisioning"] = {"grow": False}
    return [volume_config("STATE"), ephemeral, data]


def uki_boot(tpm: Swtpm, uki: UKI) -> None:
    """A node reboot as the TPM sees it: PCRs reset, firmware measures PCR 7, the UKI and phases PCR 11 (up to
    enter-machined: the window in which keys under the signed policy seal and unseal)."""
    tpm.reboot()
    tpm.pcr_extend(7, FIRMWARE_PCR7_EVENT)
    measure_uki_boot(tpm, uki)


def boot(node: Node, tpm: Swtpm, uki: UKI, *keys: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """A node boot with u-data's ``keys``: `volumed run --once` after a UKI boot."""
    node.write_config(*documents(*keys))
    uki_boot(tpm, uki)
    argv = [
        *node.run_argv(timeout=60.0), "--tpm-tcti", tpm.tcti,
        "--tpm-pcr-public-key", str(uki.public_key), "--tpm-pcr-signature", str(uki.signature),
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_LIMIT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def systemd_cryptenroll(region: Region, tpm: Swtpm, uki: UKI, passphrase: str) -> None:
    """Enrol a systemd-tpm2 token and its key slot with the real systemd-cryptenroll, as on a UKI system in
    the signed window (it checks the signature JSON against PCR 11 now)."""
    uki_boot(tpm, uki)
    argv = [
        require_tool("systemd-cryptenroll"), f"--tpm2-device={tpm.tcti}",
        f"--tpm2-public-key={uki.public_key}", f"--tpm2-signature={uki.signature}",
        "--tpm2-public-key-pcrs=11", "--tpm2-pcrs=7",
    ]  # fmt: skip
    with region.device(read_only=False) as device:
        result = subprocess.run(
            [*argv, device],
            env={**os.environ, "PASSWORD": passphrase},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr


def peer(region: Region) -> tuple[int, int, dict[str, Any]]:
    """The systemd-tpm2 token's id and key slot, and the peer as bytes: its token's and key slot's JSON as
    cryptsetup reads them, and the key slot's binary area."""
    dump = luks_dump(region)
    [(token_id, token)] = [(t, body) for t, body in dump["tokens"].items() if body["type"] == "systemd-tpm2"]
    [slot] = token["keyslots"]
    keyslot = dump["keyslots"][slot]
    with region.path.open("rb") as image:
        image.seek(region.offset + int(keyslot["area"]["offset"]))
        area = image.read(int(keyslot["area"]["size"]))
    return int(token_id), int(slot), {"token": token, "keyslot": keyslot, "area": area}


def systemd_unseal(tpm: Swtpm, uki: UKI, token: dict[str, Any], workdir: Path) -> bytes:
    """The peer's passphrase, unsealed as systemd does (independently of volumed): the blob is TPM2B_PRIVATE
    then TPM2B_PUBLIC under systemd's primary key; the policy is PolicyPCR(11) approved by the UKI key's
    signature (TPM2_VerifySignature, TPM2_PolicyAuthorize), then PolicyPCR(7); the passphrase is the
    secret's base64."""
    workdir.mkdir()
    blob = base64.b64decode(token["tpm2-blob"])
    private_size = 2 + int.from_bytes(blob[:2], "big")
    (workdir / "seal.priv").write_bytes(blob[:private_size])
    (workdir / "seal.pub").write_bytes(blob[private_size:])
    [entry] = json.loads(uki.signature.read_bytes())["sha256"]
    (workdir / "sig.bin").write_bytes(base64.b64decode(entry["sig"]))
    tools = Tools(tpm, workdir)
    tools.run(
        "tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "ecc256:aes128cfb",
        "-a", SYSTEMD_PRIMARY_ATTRIBUTES, "-c", "prim.ctx",
    )  # fmt: skip
    tools.run("tpm2_load", "-C", "prim.ctx", "-u", "seal.pub", "-r", "seal.priv", "-c", "seal.ctx")
    tools.flush_transients()
    tools.run("tpm2_startauthsession", "--policy-session", "-S", "session.ctx")
    try:
        tools.run("tpm2_policypcr", "-S", "session.ctx", "-l", "sha256:11", "-L", "pcr11.pol")
        tools.run(
            "tpm2_loadexternal", "-C", "o", "-G", "rsa", "-u", str(uki.public_key), "-a", UKI_KEY_ATTRIBUTES,
            "-n", "key.name", "-c", "key.ctx",
        )  # fmt: skip
        tools.run(
            "tpm2_verifysignature", "-c", "key.ctx", "-g", "sha256", "-m", "pcr11.pol", "-s", "sig.bin",
            "-f", "rsassa", "-t", "verified.tkt",
        )  # fmt: skip
        tools.run(
            "tpm2_policyauthorize", "-S", "session.ctx", "-i", "pcr11.pol", "-n", "key.name",
            "-t", "verified.tkt",
        )  # fmt: skip
        tools.run("tpm2_policypcr", "-S", "session.ctx", "-l", "sha256:7", "-L", "policy.dat")
        assert (workdir / "policy.dat").read_bytes().hex() == token["tpm2-policy-hash"]
        secret = tools.run("tpm2_unseal", "-c", "seal.ctx", "-p", "session:session.ctx")
    finally:
        tools.run("tpm2_flushcontext", "session.ctx")
        tools.flush_transients()
    return base64.b64encode(secret)


def assert_peer_unlocks(
    node: Node, tpm: Swtpm, uki: UKI, token: dict[str, Any], slot: int, name: str
) -> None:
    """The peer's key, unsealed at a new boot in the signed window, opens its key slot (cryptsetup)."""
    uki_boot(tpm, uki)
    passphrase = systemd_unseal(tpm, uki, token, node.workdir / name)
    assert cryptsetup_opens(node.region("u-data"), passphrase, slot=slot)


@pytest.fixture
def uki(swtpm: Swtpm, node: Node) -> UKI:
    return make_uki(node.workdir / "uki", swtpm)


def test_unconfigured_peer_slot_and_token_are_left_alone(node: Node, swtpm: Swtpm, uki: UKI) -> None:
    boot(node, swtpm, uki, static_key(0, RECOVERY))
    region = node.region("u-data")
    systemd_cryptenroll(region, swtpm, uki, RECOVERY)
    token_id, slot, before = peer(region)
    assert (token_id, slot) == (0, 1)  # systemd's choice: the first free token id and key slot
    assert_peer_unlocks(node, swtpm, uki, before["token"], slot, "unseal-enrolled")

    # The next boot adds a TPM key of volumed's in slot 2: volumed's slots converge, the peer stays.
    boot(node, swtpm, uki, static_key(0, RECOVERY), signed_tpm_key(2))
    dump = luks_dump(region)
    assert sorted(dump["keyslots"]) == ["0", "1", "2"]
    assert dump["tokens"]["2"]["type"] == "talos-tpm2"
    assert peer(region) == (token_id, slot, before)
    assert_peer_unlocks(node, swtpm, uki, before["token"], slot, "unseal-after-boot")

    # A changed key of volumed's (slot 0, whose token id the peer's token holds) is enrolled again; it
    # opens through the TPM key and the peer's token stays.
    new = "new recovery passphrase"
    boot(node, swtpm, uki, static_key(0, new), signed_tpm_key(2))
    assert cryptsetup_opens(region, new.encode(), slot=0)
    assert not cryptsetup_opens(region, RECOVERY.encode(), slot=0)
    assert peer(region) == (token_id, slot, before)
    assert_peer_unlocks(node, swtpm, uki, before["token"], slot, "unseal-after-change")

    # The TPM key leaves the config: volumed's slot 2 and its token go, the peer's stay.
    boot(node, swtpm, uki, static_key(0, new))
    dump = luks_dump(region)
    assert sorted(dump["keyslots"]) == ["0", "1"]
    assert "talos-tpm2" not in json.dumps(dump["tokens"])
    assert peer(region) == (token_id, slot, before)
    assert_peer_unlocks(node, swtpm, uki, before["token"], slot, "unseal-after-removal")
    assert swtpm.handle_count() == 0


def test_a_configured_slot_the_peer_holds_is_reported_not_taken(node: Node, swtpm: Swtpm, uki: UKI) -> None:
    """The config names the peer's key slot for a key of volumed's: the slot is bound to the peer's token, so
    volumed leaves both alone and says why (the volume works; the sync is reported failed). Once systemd's
    tool has wiped its slot, the next boot enrols volumed's key there."""
    boot(node, swtpm, uki, static_key(0, RECOVERY))
    region = node.region("u-data")
    systemd_cryptenroll(region, swtpm, uki, RECOVERY)
    token_id, slot, before = peer(region)

    result = boot(node, swtpm, uki, static_key(0, RECOVERY), static_key(slot, "mine now"))
    reason = (
        f"u-data key slots not in line with the config: error updating key slot {slot} static: key slot"
        f" {slot} is bound to token {token_id} (systemd-tpm2), another tool's: left alone (free it with that"
        " tool, or configure another slot)"
    )
    assert reason in result.stdout + result.stderr, result.stdout + result.stderr
    assert peer(region) == (token_id, slot, before)
    assert not cryptsetup_opens(region, b"mine now", slot=slot)
    assert_peer_unlocks(node, swtpm, uki, before["token"], slot, "unseal")

    # Freed with systemd's own tool, the slot is volumed's at the next boot.
    with region.device(read_only=False) as device:
        wiped = subprocess.run(
            [require_tool("systemd-cryptenroll"), f"--wipe-slot={slot}", device],
            env={**os.environ, "PASSWORD": RECOVERY},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert wiped.returncode == 0, wiped.stderr
    assert "systemd-tpm2" not in json.dumps(luks_dump(region)["tokens"])
    result = boot(node, swtpm, uki, static_key(0, RECOVERY), static_key(slot, "mine now"))
    assert "not in line with the config" not in result.stdout, result.stdout
    assert cryptsetup_opens(region, b"mine now", slot=slot)


def test_a_token_of_volumeds_never_replaces_the_peers(node: Node, swtpm: Swtpm, uki: UKI) -> None:
    """Slot 0 becomes a TPM key of volumed's, whose token goes to token id 0 (Talos' rule: id = slot), where
    the peer's token is: the peer's token stays, slot 0 keeps its key, and the sync says why."""
    boot(node, swtpm, uki, static_key(0, RECOVERY), static_key(2, "second"))
    region = node.region("u-data")
    systemd_cryptenroll(region, swtpm, uki, RECOVERY)
    token_id, slot, before = peer(region)
    assert (token_id, slot) == (0, 1)

    result = boot(node, swtpm, uki, signed_tpm_key(0), static_key(2, "second"))
    reason = (
        "u-data key slots not in line with the config: error updating key slot 0 tpm: token 0 is another"
        " tool's (systemd-tpm2, bound to key slot 1): left alone, key slot 0 is not changed (configure"
        " another slot)"
    )
    assert reason in result.stdout + result.stderr, result.stdout + result.stderr
    assert peer(region) == (token_id, slot, before)
    assert cryptsetup_opens(region, RECOVERY.encode(), slot=0)
    assert_peer_unlocks(node, swtpm, uki, before["token"], slot, "unseal")
