from click.testing import CliRunner

from volumed import __version__
from volumed.cli import volumed


def test_version() -> None:
    result = CliRunner().invoke(volumed, ["--version"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output == f"volumed, version {__version__}\n"


def test_help_lists_registered_groups() -> None:
    result = CliRunner().invoke(volumed, ["--help"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "Usage: volumed" in result.output
