"""The public areas the provider creates: the standard ECC P-256 SRK and the PCR-sealed data object."""

from __future__ import annotations

from typing import Any

from tpm2_pytss import (
    TPM2_ALG,
    TPM2_ECC,
    TPM2B_PUBLIC,
    TPMA_OBJECT,
    TPMS_ECC_PARMS,
    TPMS_ECC_POINT,
    TPMS_KEYEDHASH_PARMS,
    TPMT_ECC_SCHEME,
    TPMT_KDF_SCHEME,
    TPMT_KEYEDHASH_SCHEME,
    TPMT_PUBLIC,
    TPMT_SYM_DEF,
    TPMT_SYM_DEF_OBJECT,
    TPMU_PUBLIC_ID,
    TPMU_PUBLIC_PARMS,
    TPMU_SYM_KEY_BITS,
    TPMU_SYM_MODE,
)

SRK_ATTRIBUTES = (
    TPMA_OBJECT.FIXEDTPM
    | TPMA_OBJECT.FIXEDPARENT
    | TPMA_OBJECT.SENSITIVEDATAORIGIN
    | TPMA_OBJECT.USERWITHAUTH
    | TPMA_OBJECT.NODA
    | TPMA_OBJECT.RESTRICTED
    | TPMA_OBJECT.DECRYPT
)
"""TCG Provisioning Guidance 7.5.1 SRK attributes (the same as go-tpm's ECCSRKTemplate that Talos uses)."""

SEALED_ATTRIBUTES = TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.NODA
"""Sealed key: never leaves this TPM or this parent; exempt from dictionary-attack lockout; userWithAuth
clear, so only the policy session can unseal it (an empty password cannot)."""


def aes128_cfb() -> Any:
    """The session/SRK symmetric algorithm, AES-128 in CFB mode (what parameter encryption uses)."""
    return TPMT_SYM_DEF(
        algorithm=TPM2_ALG.AES, keyBits=TPMU_SYM_KEY_BITS(aes=128), mode=TPMU_SYM_MODE(aes=TPM2_ALG.CFB)
    )


def srk_template() -> Any:
    """``TPM2B_PUBLIC`` of the storage root key: ECC NIST P-256, SHA-256 name, AES-128-CFB, zero-filled
    32-byte unique X and Y. Same template on the same TPM -> same key -> same name, so the SRK need not
    persist."""
    return TPM2B_PUBLIC(
        publicArea=TPMT_PUBLIC(
            type=TPM2_ALG.ECC,
            nameAlg=TPM2_ALG.SHA256,
            objectAttributes=SRK_ATTRIBUTES,
            parameters=TPMU_PUBLIC_PARMS(
                eccDetail=TPMS_ECC_PARMS(
                    symmetric=TPMT_SYM_DEF_OBJECT(
                        algorithm=TPM2_ALG.AES,
                        keyBits=TPMU_SYM_KEY_BITS(aes=128),
                        mode=TPMU_SYM_MODE(aes=TPM2_ALG.CFB),
                    ),
                    scheme=TPMT_ECC_SCHEME(scheme=TPM2_ALG.NULL),
                    curveID=TPM2_ECC.NIST_P256,
                    kdf=TPMT_KDF_SCHEME(scheme=TPM2_ALG.NULL),
                )
            ),
            unique=TPMU_PUBLIC_ID(ecc=TPMS_ECC_POINT(x=bytes(32), y=bytes(32))),
        )
    )


def sealed_object_template(auth_policy: bytes) -> Any:
    """``TPM2B_PUBLIC`` of the sealed key: KeyedHash data object, SHA-256 name, :data:`SEALED_ATTRIBUTES`,
    ``authPolicy`` = the sealing policy digest."""
    return TPM2B_PUBLIC(
        publicArea=TPMT_PUBLIC(
            type=TPM2_ALG.KEYEDHASH,
            nameAlg=TPM2_ALG.SHA256,
            objectAttributes=SEALED_ATTRIBUTES,
            authPolicy=auth_policy,
            parameters=TPMU_PUBLIC_PARMS(
                keyedHashDetail=TPMS_KEYEDHASH_PARMS(scheme=TPMT_KEYEDHASH_SCHEME(scheme=TPM2_ALG.NULL))
            ),
        )
    )
