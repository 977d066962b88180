"""Controllers of block volumes: discovery, formatting and encryption, key slots, mounts."""
