"""Key providers (static, nodeID, lockToSTATE, KMS, TPM) and the KMS server. No runtime."""
