"""The optional key kinds on an install without their extra: `volumed[tpm]` (tpm2-pytss) and `volumed[kms]`
(grpcio, protobuf) are named where their packages are imported, and the rest of volumed works without them."""

from __future__ import annotations

import pytest

from tests._fresh_python import run_python

TPM = ("tpm2_pytss",)
KMS = ("grpc", "google.protobuf")


@pytest.mark.parametrize(
    ("package", "hidden", "message"),
    [
        (
            "volumed.keys.tpm",
            TPM,
            "the tpm key kind needs the volumed[tpm] extra: pip install 'volumed[tpm]'",
        ),
        (
            "volumed.keys.kms",
            KMS,
            "the kms key kind (and the KMS server) needs the volumed[kms] extra: pip install 'volumed[kms]'",
        ),
        ("volumed.keys.kms", ("google.protobuf",), "needs the volumed[kms] extra"),
    ],
)
def test_a_key_kind_without_its_extra_names_the_extra(
    package: str, hidden: tuple[str, ...], message: str
) -> None:
    code = f"""
from volumed.keys import MissingExtraError
try:
    import {package}
except MissingExtraError as error:
    assert isinstance(error, ImportError)
    print(error)
else:
    raise SystemExit("imported without its extra")
"""
    result = run_python(code, hidden=hidden)
    assert result.returncode == 0, result.stderr
    assert message in result.stdout
    assert "No module named" in result.stdout  # the import error's own words follow the extra's name


def test_from_import_of_a_key_kind_without_its_extra_names_the_extra() -> None:
    """As the key resolver imports it: ``from volumed.keys.tpm import TPMKeyProvider``."""
    result = run_python("from volumed.keys.tpm import TPMKeyProvider", hidden=TPM)
    assert result.returncode == 1
    assert "MissingExtraError: the tpm key kind needs the volumed[tpm] extra" in result.stderr


def test_the_core_imports_without_the_extras() -> None:
    code = """
import sys
import volumed.cli
import volumed.config
import volumed.controllers
import volumed.keys
import volumed.storage.luks2
from volumed.keys import check_tcti
assert check_tcti("device:/dev/tpmrm0") == "device:/dev/tpmrm0"
print(sorted(name for name in ("tpm2_pytss", "grpc", "google.protobuf") if name in sys.modules))
"""
    result = run_python(code, hidden=TPM + KMS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_volumed_run_checks_its_tcti_without_the_tpm_extra() -> None:
    """`volumed run` checks --tpm-tcti at every start: without tpm2-pytss it still says what is wrong."""
    code = """
import sys
from volumed.cli import main
sys.argv = ["volumed", "run", "--tpm-tcti", "/dev/tpmrm0", "--once"]
main()
"""
    result = run_python(code, hidden=TPM)
    assert result.returncode == 2
    assert "'/dev/tpmrm0' is not a TCTI string like 'device:/dev/tpmrm0'" in result.stderr
    assert "volumed[tpm]" not in result.stderr


def test_a_command_of_a_missing_extra_says_which_without_a_traceback() -> None:
    code = """
import sys
from volumed.cli import main
sys.argv = ["volumed", "kms", "list-keys", "--key-file", "/nonexistent/master.keys"]
main()
"""
    result = run_python(code, hidden=KMS)
    assert result.returncode == 1
    extra = "the kms key kind (and the KMS server) needs the volumed[kms] extra: pip install 'volumed[kms]'"
    assert result.stderr.startswith(f"Error: {extra}")
    assert "Traceback" not in result.stderr
