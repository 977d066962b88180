"""ConfigStatus: whether the machine config loaded, and every problem found in it."""

from __future__ import annotations

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import CONFIG, type_name

CONFIG_STATUS_ID = "machine-config"


class ConfigStatusSpec(Spec):
    """The last load of the config file (id = ``machine-config``).

    Attributes:
        path: the config file (empty when `volumed run` has no ``--config``).
        present: the file exists.
        valid: whether the last read file was valid; when false the volumes stay as the last valid config left
            them (``applied_digest``).
        errors: one line per problem: document, field path, message.
        warnings: one line per valid document of the applied config that volumed does not act on yet
            (IMAGECACHE), never dropped silently.
        documents: how many documents the file holds, once it was applied.
        digest: SHA-256 of the file as last read.
        applied_digest: SHA-256 of the config that VolumeConfigs were last produced from.
        staged_promoted: a staged config (``volumed apply-config --mode staged``) replaced the file at start.
    """

    path: str = ""
    present: bool = False
    valid: bool = False
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    documents: int = 0
    digest: str = ""
    applied_digest: str = ""
    staged_promoted: bool = False


ConfigStatusDefinition: ResourceDefinition[ConfigStatusSpec] = ResourceDefinition(
    type=type_name("ConfigStatuses", CONFIG),
    spec_model=ConfigStatusSpec,
    default_namespace=CONFIG,
    aliases=("configstatus", "configstatuses"),
    print_columns=(
        PrintColumn("Path", "path"),
        PrintColumn("Valid", "valid"),
        PrintColumn("Documents", "documents"),
        PrintColumn("Errors", "errors"),
    ),
)
