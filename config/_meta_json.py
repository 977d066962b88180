"""STATE's encryption as Talos keeps it in META tag 9: Go's ``encoding/json`` of its EncryptionSpec struct.

Talos writes ``json.Marshal`` of the config struct, so keys are Go field names in struct order, unset pointers
and slices are ``null``, and no encryption at all is the literal ``null``. The encoder below reproduces Go's
output byte for byte (including its HTML-safe string escaping); the decoder is as lenient as Go's
``json.Unmarshal`` (field names match case-insensitively, unknown fields are ignored) and also reads the older
v1alpha1 form Talos wrote before VolumeConfig existed.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from pydantic import ValidationError

from ._documents import STATE, VolumeConfigDocument
from ._encryption import EncryptionKey, EncryptionSpec, Pbkdf
from ._errors import ConfigError
from ._legacy import LegacyEncryptionSpec
from ._rules import validate_document

_SURROGATES: Final = re.compile("[\ud800-\udfff]")
_SHORT_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_HTML_ESCAPES: Final = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


class MetaEncryptionError(ConfigError):
    """The value of META tag 9 is not a STATE encryption config volumed can use (bad JSON, bad fields)."""


def _go_string(text: str) -> str:
    out = ['"']
    for char in _SURROGATES.sub("\ufffd", text):
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif char in _HTML_ESCAPES:
            out.append(_HTML_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _go_value(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_go_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_go_string(key)}:{_go_value(item)}" for key, item in value.items()) + "}"
    raise TypeError(f"cannot encode {type(value).__name__}")


def _key_struct(key: EncryptionKey) -> dict[str, object]:
    tpm: dict[str, object] | None = None
    if key.tpm is not None:
        options = key.tpm.options
        tpm_options: dict[str, object] | None = None
        if options is not None:
            tpm_options = {"PCRs": options.pcrs}
            if options.volumed_pcr_only:  # volumed extension, only when set: Talos ignores unknown fields
                tpm_options["VolumedPCROnly"] = True
        tpm = {
            "TPMOptions": tpm_options,
            "TPMCheckSecurebootStatusOnEnroll": key.tpm.check_secureboot_status_on_enroll,
        }
    return {
        "KeySlot": key.slot,
        "KeyStatic": None if key.static is None else {"KeyData": key.static.passphrase.get_secret_value()},
        "KeyNodeID": None if key.node_id is None else {},
        "KeyKMS": None if key.kms is None else {"KMSEndpoint": key.kms.endpoint},
        "KeyTPM": tpm,
        "KeyLockToSTATE": key.lock_to_state,
    }


def _legacy_key_struct(key: EncryptionKey) -> dict[str, object]:
    """v1alpha1 ``EncryptionKey``: its own field order, no ``KeyLockToSTATE``, a TPM key without options."""
    return {
        "KeyStatic": None if key.static is None else {"KeyData": key.static.passphrase.get_secret_value()},
        "KeyNodeID": None if key.node_id is None else {},
        "KeyKMS": None if key.kms is None else {"KMSEndpoint": key.kms.endpoint},
        "KeySlot": key.slot,
        "KeyTPM": None
        if key.tpm is None
        else {"TPMCheckSecurebootStatusOnEnroll": key.tpm.check_secureboot_status_on_enroll},
    }


def _legacy_struct(spec: LegacyEncryptionSpec) -> dict[str, object]:
    """v1alpha1 ``EncryptionConfig``, which Talos marshals when STATE's encryption comes from
    ``machine.systemDiskEncryption`` (the provider as written, empty when omitted)."""
    return {
        "EncryptionProvider": spec.provider,
        "EncryptionKeys": [_legacy_key_struct(key) for key in spec.keys],
        "EncryptionCipher": spec.cipher,
        "EncryptionKeySize": spec.key_size,
        "EncryptionBlockSize": spec.block_size,
        "EncryptionPerfOptions": spec.options,
    }


def encryption_to_meta_json(spec: EncryptionSpec | None) -> bytes:
    """The bytes Talos stores in META tag 9 for this STATE encryption (``null`` for none).

    Encryption read from the v1alpha1 ``machine.systemDiskEncryption`` block is written as Talos writes it
    (v1alpha1's struct). ``allowDiscards`` and ``pbkdf`` (not in Talos v1.12's struct) are appended as
    ``"EncryptionAllowDiscards"`` and ``"EncryptionPBKDF"`` only when set, and a TPM key's ``volumedPcrOnly``
    as ``"VolumedPCROnly": true`` in its ``TPMOptions`` (a boot without config must unseal STATE under the
    policy it was sealed with); Talos ignores unknown fields, and without them the output is exactly Talos
    v1.12's (``encryption_meta_test.go``).
    """
    if spec is None or not spec.enabled:
        return b"null"
    if isinstance(spec, LegacyEncryptionSpec):
        return _go_value(_legacy_struct(spec)).encode("utf-8")
    struct: dict[str, object] = {
        "EncryptionProvider": spec.effective_provider,
        "EncryptionKeys": [_key_struct(key) for key in spec.keys],
        "EncryptionCipher": spec.cipher,
        "EncryptionKeySize": spec.key_size,
        "EncryptionBlockSize": spec.block_size,
        "EncryptionPerfOptions": spec.options,
    }
    if spec.allow_discards is not None:  # not in v1.12's struct (Talos' main branch added it at this place)
        struct["EncryptionAllowDiscards"] = spec.allow_discards
    if spec.pbkdf is not None:
        struct["EncryptionPBKDF"] = {
            "Type": spec.pbkdf.type,
            "Memory": spec.pbkdf.memory,
            "Iterations": spec.pbkdf.iterations,
            "Parallel": spec.pbkdf.parallel,
        }
    return _go_value(struct).encode("utf-8")


def _fields(value: object, where: str) -> dict[str, Any] | None:
    """Go's decoding of a JSON object into a struct: keys folded to lower case; null -> None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MetaEncryptionError(f"tag 9: {where}: expected an object, got {type(value).__name__}")
    return {str(key).lower(): item for key, item in value.items()}


def _pick(fields: dict[str, Any], name: str) -> Any:
    return fields.get(name.lower())


def _key_from_struct(value: object, index: int) -> dict[str, object]:
    where = f"EncryptionKeys[{index}]"
    fields = _fields(value, where)
    if fields is None:
        raise MetaEncryptionError(f"tag 9: {where}: expected an object, got null")
    key: dict[str, object] = {"slot": _pick(fields, "KeySlot") or 0}
    static = _fields(_pick(fields, "KeyStatic"), f"{where}.KeyStatic")
    if static is not None:
        key["static"] = {"passphrase": _pick(static, "KeyData") or ""}
    if _fields(_pick(fields, "KeyNodeID"), f"{where}.KeyNodeID") is not None:
        key["nodeID"] = {}
    kms = _fields(_pick(fields, "KeyKMS"), f"{where}.KeyKMS")
    if kms is not None:
        key["kms"] = {"endpoint": _pick(kms, "KMSEndpoint") or ""}
    tpm = _fields(_pick(fields, "KeyTPM"), f"{where}.KeyTPM")
    if tpm is not None:
        tpm_key: dict[str, object] = {}
        options = _fields(_pick(tpm, "TPMOptions"), f"{where}.KeyTPM.TPMOptions")
        if options is not None:
            tpm_options: dict[str, object] = {"pcrs": _pick(options, "PCRs")}
            if _pick(options, "VolumedPCROnly") is not None:
                tpm_options["volumedPcrOnly"] = _pick(options, "VolumedPCROnly")
            tpm_key["options"] = tpm_options
        if _pick(tpm, "TPMCheckSecurebootStatusOnEnroll") is not None:
            tpm_key["checkSecurebootStatusOnEnroll"] = _pick(tpm, "TPMCheckSecurebootStatusOnEnroll")
        key["tpm"] = tpm_key
    if _pick(fields, "KeyLockToSTATE") is not None:
        key["lockToState"] = _pick(fields, "KeyLockToSTATE")
    return key


# Talos' adapter (``machined/pkg/adapters/block/volume_config.go``) uses the first kind a key has, in this
# order; its v1alpha1 validation lets a key with several pass, so Talos may have written one to tag 9.
_KIND_PRECEDENCE: Final = ("static", "nodeID", "kms", "tpm")


def _one_kind(key: dict[str, object]) -> dict[str, object]:
    """The key as Talos uses it: only its first kind (static, nodeID, kms, tpm) is kept."""
    present = [kind for kind in _KIND_PRECEDENCE if kind in key]
    return {name: value for name, value in key.items() if name not in present[1:]}


def _spec_from_struct(fields: dict[str, Any]) -> dict[str, object]:
    keys = _pick(fields, "EncryptionKeys")
    if keys is not None and not isinstance(keys, list):
        raise MetaEncryptionError(f"tag 9: EncryptionKeys: expected an array, got {type(keys).__name__}")
    provider = _pick(fields, "EncryptionProvider")
    spec: dict[str, object] = {
        # The v1alpha1 form left the provider empty: it meant luks2.
        "provider": provider or "luks2",
        "keys": [_one_kind(_key_from_struct(key, index)) for index, key in enumerate(keys or [])],
        "cipher": _pick(fields, "EncryptionCipher") or "",
        "keySize": _pick(fields, "EncryptionKeySize") or 0,
        "blockSize": _pick(fields, "EncryptionBlockSize") or 0,
    }
    if _pick(fields, "EncryptionPerfOptions") is not None:
        spec["options"] = _pick(fields, "EncryptionPerfOptions")
    if _pick(fields, "EncryptionAllowDiscards") is not None:
        spec["allowDiscards"] = _pick(fields, "EncryptionAllowDiscards")
    pbkdf = _fields(_pick(fields, "EncryptionPBKDF"), "EncryptionPBKDF")
    # Older volumed wrote pbkdf2 here; configs may no longer ask for it (Talos cannot open such slots), so new
    # key slots of a STATE opened from META get the default KDF instead of a lock-out.
    if pbkdf is not None and _pick(pbkdf, "Type") != "pbkdf2":
        spec["pbkdf"] = {
            name: _pick(pbkdf, name) for name in Pbkdf.model_fields if _pick(pbkdf, name) is not None
        }
    return spec


def encryption_from_meta_json(data: bytes) -> EncryptionSpec | None:
    """Read the value of META tag 9: STATE's encryption, or None for ``null`` (no encryption).

    The result is checked with the same rules as a VolumeConfig for STATE.

    Raises:
        MetaEncryptionError: the bytes are not JSON, a field has the wrong type, or a rule is broken; the
            message names the field and never contains a passphrase.
    """
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise MetaEncryptionError(f"tag 9: not valid JSON ({type(error).__name__})") from None
    fields = _fields(value, "value")
    if fields is None:
        return None
    raw = _spec_from_struct(fields)
    try:
        spec = EncryptionSpec.from_input(raw)
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise MetaEncryptionError(f"tag 9: {where}: {first['msg']}") from None
    # Reuse the document rules: a STATE VolumeConfig with this encryption must be valid.
    document = VolumeConfigDocument(api_version="v1alpha1", kind="VolumeConfig", name=STATE, encryption=spec)
    problems = validate_document(document)
    if problems:
        path, message = problems[0]
        raise MetaEncryptionError(f"tag 9: {path}: {message}")
    return spec if spec.enabled else None
