"""The controllers of the volume subsystem: thin wiring of resources to storage and keys."""
