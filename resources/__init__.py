"""Typed resources of the volume subsystem: specs as pydantic models and their definitions."""
