"""The kernel tier: volumed inside a QEMU guest with real device-mapper, dm-crypt and a software TPM."""
