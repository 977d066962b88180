"""Machine config documents (Talos v1.12 VolumeConfig, UserVolumeConfig): models and validation."""
