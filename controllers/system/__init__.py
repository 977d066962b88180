"""Controllers of node facts: its identity (SystemInformation) and the META partition (MetaStore)."""
