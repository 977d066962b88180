"""Key providers for a volume's configured slots, or why a slot's key cannot be made now.

Shared by the KeyResolver (which publishes readiness) and the VolumeFormatter (which uses the providers), so
both always agree on what is available.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from volumed.controllers.block._encryption import SlotKey
from volumed.keys import (
    EntropyCheckError,
    GatedKeyProvider,
    KeyGate,
    KeyProvider,
    LockedToStateKeyProvider,
    MissingExtraError,
    NodeIDKeyProvider,
    StaticKeyProvider,
    check_uuid_entropy,
    with_time_limit,
)
from volumed.resources import KeyKind, TPMWindow

if TYPE_CHECKING:
    from collections.abc import Mapping

    from volumed.keys import DiskSalt
    from volumed.resources import KeySlotSpec, VolumeConfigSpec, VolumeKeySecretsSpec

DEFAULT_TCTI: Final = "device:/dev/tpmrm0"
KEY_TIME_LIMIT: Final = 20.0
SALT_MISSING: Final = "salt not yet available (STATE is not mounted)"
NODE_UUID_PENDING: Final = "waiting for the node UUID (META not read yet)"
NO_NODE_UUID: Final = "machine UUID is not populated"  # Talos' words
UKI_PCR: Final = 11
TPM_PHASE_PENDING: Final = "waiting for the TPM boot phase (PCR 11 not looked at yet)"


@dataclass(frozen=True)
class KeyEnvironment:
    """What key providers need from the node: its UUID, the STATE salt, the TPM and KMS settings."""

    node_uuid: str | None = None  # None: not known yet (META not read); empty: the node has none
    salt: DiskSalt | None = None
    salt_error: str = ""  # why STATE, although mounted, gave no salt (its salt file is unusable)
    tcti: str = DEFAULT_TCTI
    kms_ca_file: str | None = None
    efivars_dir: str | None = None
    # The UKI's PCR-signing public key and PCR signature JSON (None: systemd-stub's /.extra files).
    tpm_pcr_public_key: str | None = None
    tpm_pcr_signature: str | None = None
    # The boot phase window (BootPhaseController): when a gate is set, TPM keys wait until PCR 11 was looked
    # at, and keys under the signed policy are used only while the window is open (holding the gate).
    tpm_gate: KeyGate | None = None
    tpm_window: TPMWindow | None = None
    tpm_window_reason: str = ""


def salt_reason(env: KeyEnvironment) -> str:
    """Why keys locked to STATE cannot be made: STATE not mounted yet, or its salt file unusable."""
    return env.salt_error or SALT_MISSING


def node_uuid_reason(env: KeyEnvironment) -> str:
    """Why keys bound to the node UUID cannot be made: it is not decided yet (META not read), or there is
    none (no flag, no META tag 0x0f, no SMBIOS UUID)."""
    return NODE_UUID_PENDING if env.node_uuid is None else NO_NODE_UUID


def tpm_absent_reason(tcti: str) -> str:
    """Empty when the TCTI looks usable, else why not (device TCTIs only; others are tried when used)."""
    if tcti.startswith("device:"):
        device = tcti.split(":", 1)[1] or "/dev/tpmrm0"
        if not Path(device).exists():
            return f"no TPM ({device} is missing)"
    return ""


def _inner_provider(
    key: KeySlotSpec, volume_id: str, secrets: VolumeKeySecretsSpec | None, env: KeyEnvironment
) -> tuple[KeyProvider | None, str]:
    if key.kind is KeyKind.STATIC:
        passphrase = secrets.passphrase(key.slot) if secrets is not None else None
        if not passphrase:
            return None, "static passphrase is empty"
        return StaticKeyProvider(slot=key.slot, passphrase=passphrase), ""
    if key.kind is KeyKind.NODE_ID:
        if not env.node_uuid:
            return None, node_uuid_reason(env)
        try:
            check_uuid_entropy(env.node_uuid)
        except EntropyCheckError as error:
            return None, str(error)
        return NodeIDKeyProvider(slot=key.slot, node_uuid=env.node_uuid, volume_id=volume_id), ""
    if key.kind is KeyKind.KMS:
        if not env.node_uuid:
            return None, node_uuid_reason(env)
        try:
            from volumed.keys.kms import KMSClientTLS, KMSKeyProvider
        except MissingExtraError as error:
            return None, str(error)
        tls = None
        if env.kms_ca_file:
            tls = KMSClientTLS(ca_pem=Path(env.kms_ca_file).read_bytes())
        try:
            return KMSKeyProvider(
                slot=key.slot, endpoint=key.kms_endpoint, node_uuid=env.node_uuid, tls=tls
            ), ""
        except ValueError as error:
            return None, f"KMS endpoint: {error}"
    return _tpm_provider(key, env)


def _tpm_provider(key: KeySlotSpec, env: KeyEnvironment) -> tuple[KeyProvider | None, str]:
    """The slot's TPM provider, or why not; a setting it refuses (a malformed TCTI) is this key's reason,
    so that only TPM keys wait on it, never every volume's reconcile."""
    reason = tpm_absent_reason(env.tcti)
    if reason:
        return None, reason
    gate = env.tpm_gate
    signed = not key.tpm_pcr_only
    if gate is not None and env.tpm_window is None and (signed or UKI_PCR in key.tpm_pcrs):
        return None, TPM_PHASE_PENDING  # PCR 11 may be about to change
    try:
        from volumed.keys.tpm import (
            DEFAULT_EFIVARS_DIR,
            DEFAULT_PCR_PUBLIC_KEY,
            DEFAULT_PCR_SIGNATURE,
            TPMKeyProvider,
        )
    except MissingExtraError as error:
        return None, str(error)

    try:
        provider = TPMKeyProvider(
            key.slot,
            pcrs=key.tpm_pcrs,  # empty: `pcrs: []`, only the signed PCR 11 binds the key (as in Talos)
            tcti=env.tcti,
            check_secureboot_on_enroll=key.tpm_check_secureboot_on_enroll,
            efivars_dir=Path(env.efivars_dir) if env.efivars_dir else DEFAULT_EFIVARS_DIR,
            pcr_public_key=Path(env.tpm_pcr_public_key) if env.tpm_pcr_public_key else DEFAULT_PCR_PUBLIC_KEY,
            pcr_signature=Path(env.tpm_pcr_signature) if env.tpm_pcr_signature else DEFAULT_PCR_SIGNATURE,
            pcr_only=key.tpm_pcr_only,
        )
    except ValueError as error:
        return None, str(error)
    if gate is None or not signed or env.tpm_window in (None, TPMWindow.OFF):
        return provider, ""
    if gate.closed or env.tpm_window is TPMWindow.OPEN:
        # Closed by this run (the volumes opened): still a provider, so that the closing changes nothing the
        # key-slot sync looks at, but a seal or an unseal under the signed policy fails at once
        # (GateClosedError) and the status says why; tokens sealed to PCRs alone still unseal.
        return GatedKeyProvider(provider, gate, gates=binds_pcr11), gate.reason
    # No window in this run (no TPM answer, no UKI, PCR 11 past the signed phases): a seal or an unseal under
    # the signed policy fails at once with the window's reason; a token sealed to PCRs alone (volumed before
    # the signed policy) still unseals.
    never_open = KeyGate(closed=env.tpm_window_reason or "TPM keys under the signed policy cannot be used")
    return GatedKeyProvider(provider, never_open, gates=binds_pcr11), env.tpm_window_reason


def binds_pcr11(token: Mapping[str, Any] | None) -> bool:
    """Whether unsealing ``token`` needs the signed PCR 11 window: every Talos token (1.12 with
    ``pubkey_pcrs``, and pre-1.12 without ``encryption_version``); not volumed's PCR-only ones."""
    user_data = token.get("UserData") if token is not None else None
    if not isinstance(user_data, dict):
        return True
    return bool(user_data.get("pubkey_pcrs")) or not user_data.get("encryption_version")


def slot_keys(
    volume_id: str, config: VolumeConfigSpec, secrets: VolumeKeySecretsSpec | None, env: KeyEnvironment
) -> list[SlotKey]:
    """One `SlotKey` per configured slot, in slot order, each with a time-limited provider or a reason."""
    if config.encryption is None:
        return []
    result: list[SlotKey] = []
    for key in sorted(config.encryption.keys, key=lambda k: k.slot):
        provider, reason = _inner_provider(key, volume_id, secrets, env)
        if provider is not None and key.lock_to_state:
            if env.salt is None:
                provider, reason = None, salt_reason(env)
            else:
                provider = LockedToStateKeyProvider(provider, env.salt)
        if provider is not None:
            provider = with_time_limit(provider, KEY_TIME_LIMIT)
        result.append(SlotKey(key.slot, key.kind.value, provider, reason))
    return result


def read_node_uuid(dmi_path: str = "/sys/class/dmi/id/product_uuid") -> str | None:
    """The SMBIOS system UUID as the kernel shows it, or None when the machine has none (containers)."""
    try:
        value = Path(dmi_path).read_text().strip()
    except OSError:
        return None
    return value or None


def env_tcti() -> str:
    """The TCTI from ``VOLUMED_TPM_TCTI`` (tests point it at swtpm), else the kernel resource manager."""
    return os.environ.get("VOLUMED_TPM_TCTI", DEFAULT_TCTI)
