"""Resources of the block namespace: disks, volumes, their encryption, mounts."""
