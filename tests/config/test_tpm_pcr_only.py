"""``tpm.options.volumedPcrOnly`` (volumed extension): parsed, off by default, needs a PCR."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from volumed.config import TPMOptions
from volumed.config._encryption import TPMKey


def test_off_by_default() -> None:
    assert not TPMKey.model_validate({}).pcr_only
    assert not TPMKey.model_validate({"options": {"pcrs": [7]}}).pcr_only


def test_selects_the_pcr_only_policy() -> None:
    key = TPMKey.model_validate({"options": {"pcrs": [7], "volumedPcrOnly": True}})
    assert key.pcr_only
    assert key.effective_pcrs == (7,)


def test_needs_a_pcr() -> None:
    with pytest.raises(ValidationError, match="volumedPcrOnly needs at least one PCR"):
        TPMOptions.model_validate({"pcrs": [], "volumedPcrOnly": True})
