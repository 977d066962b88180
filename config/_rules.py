"""Talos' validation rules for parsed documents (plus volumed's checks of the extension fields).

Messages follow Talos' wording but never repeat a value of the document (the field path says which one):
text in the wrong field may be a misplaced passphrase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ._documents import (
    DEFAULT_FILESYSTEM,
    DIRECTORY,
    DISK,
    FILESYSTEMS,
    PARTITION,
    STATE,
    SYSTEM_VOLUMES,
    UserVolumeConfigDocument,
    VolumeConfigDocument,
)
from ._encryption import CIPHER_KEY_SIZES_BITS, PERF_OPTIONS, SUPPORTED_CIPHERS, SUPPORTED_KEY_SIZES_BITS
from ._errors import SelectorError
from ._other_volumes import (
    RAW_VOLUME_PREFIX,
    SWAP_VOLUME_PREFIX,
    ExistingVolumeConfigDocument,
    RawVolumeConfigDocument,
    SwapVolumeConfigDocument,
    ZswapConfigDocument,
)
from ._volume import compile_volume_selector

if TYPE_CHECKING:
    from ._documents import ProvisioningSpec, VolumeDocument
    from ._encryption import EncryptionKey, EncryptionSpec, Pbkdf
    from ._other_volumes import OtherDocument

API_VERSION: Final = "v1alpha1"
LUKS2_SLOTS: Final = 32
MAX_PCR: Final = 23
PARTITION_LABEL_LENGTH: Final = 36
MAX_USER_VOLUME_NAME: Final = PARTITION_LABEL_LENGTH - len("u-")
MAX_RAW_VOLUME_NAME: Final = PARTITION_LABEL_LENGTH - len(RAW_VOLUME_PREFIX)
MAX_SWAP_VOLUME_NAME: Final = PARTITION_LABEL_LENGTH - len(SWAP_VOLUME_PREFIX)
# Go's %q of Talos' allowedVolumes slice.
SYSTEM_VOLUMES_QUOTED: Final = "[" + " ".join(f'"{name}"' for name in SYSTEM_VOLUMES) + "]"
ZSWAP_MAX_POOL_PERCENT: Final = 100
SECTOR_SIZES: Final = (512, 1024, 2048, 4096)
PBKDF_TYPES: Final = ("argon2id", "argon2i")
ARGON2_MEMORY_KIB: Final = (32, 4 * 1024 * 1024)
ARGON2_MIN_ITERATIONS: Final = 4
ARGON2_MAX_PARALLEL: Final = 4
# go-blockdevice luks/header.go validateHeader (Talos >= v1.12.7) refuses to open volumes with such key slots.
PBKDF2_REFUSED: Final = (
    "pbkdf2 is not allowed: Talos (v1.12.7 and later) refuses to open a LUKS2 volume with pbkdf2 key slots"
    " (argon2id, argon2i)"
)

Issue = tuple[str, str]


def _name_char_ok(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "-")


def validate_document(document: VolumeDocument | OtherDocument) -> list[Issue]:
    """Every rule violation of one parsed document, as (field path, message) pairs."""
    issues: list[Issue] = []
    if document.api_version != API_VERSION:
        issues.append(("apiVersion", f'unsupported apiVersion, expected "{API_VERSION}"'))
    if isinstance(document, VolumeConfigDocument):
        issues += _validate_volume_config(document)
    elif isinstance(document, UserVolumeConfigDocument):
        issues += _validate_user_volume_config(document)
    elif isinstance(document, RawVolumeConfigDocument | SwapVolumeConfigDocument):
        longest = (
            MAX_RAW_VOLUME_NAME if isinstance(document, RawVolumeConfigDocument) else MAX_SWAP_VOLUME_NAME
        )
        issues += _validate_name(document.name, longest)
        issues += _validate_provisioning(document.provisioning, required=True)
        issues += _validate_encryption(document.encryption, volume=document.volume_id)
    elif isinstance(document, ExistingVolumeConfigDocument):
        issues += _validate_name(document.name, None)
        issues += _validate_volume_selector(document.discovery.match)
    else:
        issues += _validate_zswap(document)
    return issues


def _validate_volume_config(document: VolumeConfigDocument) -> list[Issue]:
    if document.name not in SYSTEM_VOLUMES:
        # Talos returns this error alone.
        return [("name", f"only {SYSTEM_VOLUMES_QUOTED} volumes are supported")]
    issues: list[Issue] = []
    if document.name == STATE and not document.provisioning.is_empty:
        issues.append(("provisioning", f'provisioning config is not allowed for the "{STATE}" volume'))
    else:
        issues += _validate_provisioning(document.provisioning, required=False)
    issues += _validate_encryption(document.encryption, volume=document.name)
    return issues


def _validate_name(name: str, longest: int | None) -> list[Issue]:
    """Talos' name rules of user, raw, swap (``longest``: 36 minus the prefix) and existing (no limit)
    volumes."""
    issues: list[Issue] = []
    if not name:
        issues.append(("name", "name is required"))
    if longest is not None and not 1 <= len(name) <= longest:
        issues.append(("name", f"name must be between 1 and {longest} characters long"))
    if not all(_name_char_ok(char) for char in name):
        issues.append(
            ("name", "name can only contain lowercase and uppercase ASCII letters, digits, and hyphens")
        )
    return issues


def _validate_user_volume_config(document: UserVolumeConfigDocument) -> list[Issue]:
    issues = _validate_name(document.name, MAX_USER_VOLUME_NAME)
    volume_type = document.effective_volume_type
    if volume_type == DIRECTORY:
        if not document.provisioning.is_empty:
            issues.append(("provisioning", "provisioning spec is invalid for volumeType directory"))
        if document.encryption.model_dump(exclude_defaults=True):
            issues.append(("encryption", "encryption spec is invalid for volumeType directory"))
        if not document.filesystem.is_empty:
            issues.append(("filesystem", "filesystem spec is invalid for volumeType directory"))
    elif volume_type in (PARTITION, DISK):
        issues += _validate_provisioning(document.provisioning, required=True, sizes=volume_type == PARTITION)
        issues += _validate_filesystem(document)
        issues += _validate_encryption(document.encryption, volume=document.volume_id)
    else:
        # Talos names the type (%q); volumed does not repeat the document's text, it names the allowed ones.
        issues.append(("volumeType", 'unsupported volume type (supported: "partition", "directory", "disk")'))
    return issues


def _validate_filesystem(document: UserVolumeConfigDocument) -> list[Issue]:
    spec = document.filesystem
    if spec.type and spec.type not in FILESYSTEMS:
        return [("filesystem.type", f"unsupported filesystem type ({', '.join(FILESYSTEMS)})")]
    if spec.project_quota_support and (spec.type or DEFAULT_FILESYSTEM) != "xfs":
        return [
            ("filesystem.projectQuotaSupport", "project quota support is only available for xfs filesystem")
        ]
    return []


def _validate_provisioning(spec: ProvisioningSpec, *, required: bool, sizes: bool = True) -> list[Issue]:
    """Talos' ``ProvisioningSpec.Validate(required, sizeSupported)``."""
    issues: list[Issue] = []
    if spec.match:
        try:
            spec.selector()
        except SelectorError as error:
            issues.append(("provisioning.diskSelector.match", f"disk selector is invalid: {error}"))
    elif required:
        issues.append(("provisioning.diskSelector.match", "disk selector is required"))
    min_set = spec.min_size is not None and spec.min_size.value != 0
    max_set = bool(spec.max_bytes or spec.max_percent)  # Talos' Size.IsZero: 0 and 0% are unset
    if not sizes:
        if min_set or max_set or spec.grow is not None:
            issues.append(("provisioning", "min size, max size and grow are not supported"))
    elif min_set and max_set:
        if not spec.max_is_relative and spec.min_size is not None and spec.min_size.value > spec.max_bytes:
            issues.append(("provisioning", "min size is greater than max size"))
    elif required and not min_set and not max_set:
        issues.append(("provisioning", "min size or max size is required"))
    return issues


def _validate_volume_selector(match: str) -> list[Issue]:
    """Talos' ``VolumeDiscoverySpec.Validate``: a selector is required and must compile (its syntax, and the
    ``volume.<field>`` and ``disk.<field>`` names it uses)."""
    if not match:
        return [("discovery.volumeSelector.match", "volume selector is required")]
    try:
        compile_volume_selector(match)
    except SelectorError as error:
        return [("discovery.volumeSelector.match", f"volume selector is invalid: {error}")]
    return []


def _validate_zswap(document: ZswapConfigDocument) -> list[Issue]:
    percent = document.max_pool_percent
    if percent is not None and not 0 <= percent <= ZSWAP_MAX_POOL_PERCENT:
        return [("maxPoolPercent", f"maxPoolPercent must be between 0 and {ZSWAP_MAX_POOL_PERCENT}")]
    return []


def _validate_encryption(spec: EncryptionSpec, *, volume: str) -> list[Issue]:
    if not spec.enabled:
        return []
    return _encryption_issues(spec, "encryption", volume=volume, legacy=False)


def validate_legacy_encryption(spec: EncryptionSpec, *, volume: str) -> list[Issue]:
    """The issues of one ``machine.systemDiskEncryption`` block (v1alpha1), paths relative to the block.

    Talos' v1alpha1 rules with its wording (keys required, slots unique, each key of some kind), then the
    same checks as a VolumeConfig block (volumed refuses a key with two kinds, which v1alpha1 lets pass).
    """
    return _encryption_issues(spec, "", volume=volume, legacy=True)


def _encryption_issues(spec: EncryptionSpec, prefix: str, *, volume: str, legacy: bool) -> list[Issue]:
    def at(path: str) -> str:
        return f"{prefix}.{path}" if prefix else path

    issues: list[Issue] = []
    # Talos' enum parsing falls back to the lower-cased text: LUKS2 and Luks2 are luks2.
    if spec.provider.lower() not in ("", "luks2"):
        issues.append((at("provider"), "unsupported encryption provider (supported: luks2)"))
    if not spec.keys:
        message = "no encryption keys provided" if legacy else "encryption keys are required"
        issues.append((at("keys"), message))
    seen_slots: set[int] = set()
    for index, key in enumerate(spec.keys):
        issues += _validate_key(key, at(f"keys[{index}]"), seen_slots, volume=volume, legacy=legacy)
        seen_slots.add(key.slot)
    issues += _validate_cipher(spec, prefix)
    if spec.block_size and spec.block_size not in SECTOR_SIZES:
        issues.append((at("blockSize"), "block size is not one of 512, 1024, 2048, 4096"))
    for index, option in enumerate(spec.options or ()):
        if option not in PERF_OPTIONS:
            issues.append((at(f"options[{index}]"), f"unsupported perf option ({', '.join(PERF_OPTIONS)})"))
    if spec.pbkdf is not None:
        issues += _validate_pbkdf(spec.pbkdf)
    return issues


def _validate_cipher(spec: EncryptionSpec, prefix: str = "encryption") -> list[Issue]:
    """The cipher and key size must be ones volumed can format and open (Talos takes any dm-crypt cipher)."""
    dot = f"{prefix}." if prefix else ""
    supported = ", ".join(SUPPORTED_CIPHERS)
    if spec.cipher and spec.cipher not in SUPPORTED_CIPHERS:
        return [(f"{dot}cipher", f"unsupported cipher (supported: {supported})")]
    allowed = CIPHER_KEY_SIZES_BITS.get(spec.effective_cipher, SUPPORTED_KEY_SIZES_BITS)
    if spec.key_size and spec.key_size not in allowed:
        sizes = " or ".join(map(str, sorted(allowed)))
        return [
            (
                f"{dot}keySize",
                f"unsupported key size for {spec.effective_cipher} (supported: {sizes} bits)",
            )
        ]
    return []


def _validate_key(
    key: EncryptionKey, path: str, seen_slots: set[int], *, volume: str, legacy: bool = False
) -> list[Issue]:
    issues: list[Issue] = []
    if not 0 <= key.slot < LUKS2_SLOTS:
        issues.append((f"{path}.slot", f"key slot is out of range (0 to {LUKS2_SLOTS - 1})"))
    if key.slot in seen_slots:
        message = f"encryption key slot {key.slot} is already in use" if legacy else "duplicate key slot"
        issues.append((f"{path}.slot", message))
    kinds = key.kinds
    if not kinds:
        message = "at least one encryption key type must be specified"
        if legacy:
            message = f"encryption key at slot {key.slot} doesn't have the configuration parameters"
        issues.append((path, message))
    elif len(kinds) > 1:
        names = ", ".join(kinds)  # field names, not values
        issues.append((path, f"only one encryption key type can be specified, got: {names}"))
    if key.static is not None and not key.static.passphrase.get_secret_value():
        issues.append((f"{path}.static.passphrase", "static passphrase must not be empty"))
    if key.kms is not None and not key.kms.endpoint:
        issues.append((f"{path}.kms.endpoint", "KMS endpoint is required"))
    if key.tpm is not None and key.tpm.options is not None and key.tpm.options.pcrs is not None:
        seen_pcrs: set[int] = set()
        for index, pcr in enumerate(key.tpm.options.pcrs):
            where = f"{path}.tpm.options.pcrs[{index}]"
            if not 0 <= pcr <= MAX_PCR:
                issues.append((where, f"PCR is out of range (0 to {MAX_PCR})"))
            elif pcr in seen_pcrs:
                issues.append((where, "duplicate PCR"))
            seen_pcrs.add(pcr)
    if key.locked_to_state and volume == STATE:
        issues.append((f"{path}.lockToState", f'state-locked key is not allowed for the "{STATE}" volume'))
    return issues


def _validate_pbkdf(pbkdf: Pbkdf) -> list[Issue]:
    """Only argon2: Talos cannot open a volume with pbkdf2 key slots (``volumed luks`` still makes them)."""
    issues: list[Issue] = []
    if pbkdf.type == "pbkdf2":
        return [("encryption.pbkdf.type", PBKDF2_REFUSED)]
    if pbkdf.type not in PBKDF_TYPES:
        return [("encryption.pbkdf.type", f"unsupported pbkdf type ({', '.join(PBKDF_TYPES)})")]
    low, high = ARGON2_MEMORY_KIB
    if pbkdf.memory is not None and not low <= pbkdf.memory <= high:
        issues.append(("encryption.pbkdf.memory", f"argon2 memory must be between {low} and {high} KiB"))
    if pbkdf.iterations is not None and pbkdf.iterations < ARGON2_MIN_ITERATIONS:
        issues.append(
            ("encryption.pbkdf.iterations", f"argon2 needs at least {ARGON2_MIN_ITERATIONS} iterations")
        )
    if pbkdf.parallel is not None and not 1 <= pbkdf.parallel <= ARGON2_MAX_PARALLEL:
        issues.append(
            ("encryption.pbkdf.parallel", f"argon2 parallel must be between 1 and {ARGON2_MAX_PARALLEL}")
        )
    return issues
