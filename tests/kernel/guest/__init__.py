"""Guest-side scenarios: run by the guest's /init as ``python -m tests.kernel.guest.<name> PARAMS.json``
inside the chroot (the host's root), with real device-mapper and, when attached, a TPM at /dev/tpmrm0."""
