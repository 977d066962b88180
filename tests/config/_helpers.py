"""Shared snippets for the config tests."""

from __future__ import annotations

from pathlib import Path

SEED_DOC = Path("/work/shared/seed/talos-disk-encryption-v1.12.txt")


def seed_yaml_blocks(text: str) -> list[str]:
    """The YAML examples of the seed doc: the lines after a line reading `yaml`, up to the next blank line."""
    lines = text.splitlines()
    blocks: list[str] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() == "yaml":
            block: list[str] = []
            index += 1
            while index < len(lines) and lines[index].strip():
                block.append(lines[index])
                index += 1
            blocks.append("\n".join(block) + "\n")
        index += 1
    return blocks


USER_VOLUME = """\
apiVersion: v1alpha1
kind: UserVolumeConfig
name: data
provisioning:
  diskSelector:
    match: disk.size > 10u * GiB && !system_disk
  minSize: 1GiB
  maxSize: 2.5GiB
filesystem:
  type: ext4
encryption:
  provider: luks2
  cipher: aes-xts-plain64
  keySize: 256
  blockSize: 4096
  options: [no_read_workqueue, same_cpu_crypt]
  allowDiscards: true
  pbkdf: {type: argon2id, memory: 32768, iterations: 4, parallel: 1}
  keys:
    - slot: 0
      tpm:
        options: {pcrs: [0, 7]}
        checkSecurebootStatusOnEnroll: true
    - slot: 1
      static: {passphrase: topsecret}
      lockToState: true
    - slot: 2
      kms: {endpoint: "kms.example:4050"}
    - slot: 3
      nodeID: {}
"""
