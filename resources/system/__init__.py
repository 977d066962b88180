"""Resources of the system namespace: the node's identity and the META partition."""
