"""Imported first by ``volumed.keys.tpm``: tpm2-pytss is the ``volumed[tpm]`` extra, named when missing."""

from .._extras import require_extra

require_extra("tpm2_pytss", what="the tpm key kind", extra="tpm")
