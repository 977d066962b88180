"""Resources of the config namespace: the machine config as loaded."""
