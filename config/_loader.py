"""Multi-document YAML -> Talos v1.12's volume documents, with every issue collected."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final

import structlog
import yaml
from pydantic import AliasChoices, BaseModel, ValidationError

from ._cel import shared_selector_budget
from ._documents import SYSTEM_VOLUMES, UserVolumeConfigDocument, VolumeConfigDocument
from ._errors import ConfigInvalidError, ConfigIssue
from ._legacy import (
    DISK_QUOTA_PATH,
    LEGACY_FIELD,
    LEGACY_FIELDS,
    LEGACY_PATH,
    V1Alpha1Document,
    is_v1alpha1_document,
)
from ._limits import MAX_CONFIG_BYTES, MAX_DOCUMENTS, MAX_EXPANDED_NODES
from ._other_volumes import (
    ExistingVolumeConfigDocument,
    OtherDocument,
    RawVolumeConfigDocument,
    SwapVolumeConfigDocument,
    ZswapConfigDocument,
)
from ._rules import validate_document, validate_legacy_encryption
from ._source import resolved_value, source_text
from ._vocabulary import TALOS_UNSUPPORTED_FIELDS, _models_in, field_names
from ._yaml import KeyPositions, describe_yaml_error, load_documents

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pydantic_core import ErrorDetails

    from ._documents import VolumeDocument
    from ._encryption import EncryptionSpec

_log = structlog.get_logger(__name__)

_DocumentModel = (
    type[VolumeConfigDocument]
    | type[UserVolumeConfigDocument]
    | type[RawVolumeConfigDocument]
    | type[ExistingVolumeConfigDocument]
    | type[SwapVolumeConfigDocument]
    | type[ZswapConfigDocument]
)
_KINDS: Final[dict[str, _DocumentModel]] = {
    "VolumeConfig": VolumeConfigDocument,
    "UserVolumeConfig": UserVolumeConfigDocument,
    "RawVolumeConfig": RawVolumeConfigDocument,
    "ExistingVolumeConfig": ExistingVolumeConfigDocument,
    "SwapVolumeConfig": SwapVolumeConfigDocument,
    "ZswapConfig": ZswapConfigDocument,
}
# Talos' ConflictsWithKinds: a user volume and an existing volume may not share a name.
_CONFLICTING_KINDS: Final = {
    "UserVolumeConfig": "ExistingVolumeConfig",
    "ExistingVolumeConfig": "UserVolumeConfig",
}
# A document's name is shown in its label only when it could be a volume name (it may be any text otherwise).
_MAX_NAME_SHOWN: Final = 34
NO_DOCUMENTS: Final = (
    "the config file holds no documents (empty, or still being written): keeping the volumes as they are"
)
# The label of the v1alpha1 machine config document in issues.
V1ALPHA1_LABEL: Final = "v1alpha1"

_TYPE_MESSAGES: Final = {
    "bool_type": "expected a boolean",
    "int_type": "expected an integer",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "dict_type": "expected a mapping",
    "missing": "field is required",
    "invalid_key": "field names must be strings",
    "float_type": "expected a number",
    "string_too_long": "text too long",
    "string_too_short": "text too short",
    "too_long": "too many items",
    "too_short": "too few items",
    "int_from_float": "expected an integer",
    "bool_parsing": "expected a boolean",
    "int_parsing": "expected an integer",
}


@dataclass(frozen=True)
class MachineConfig:
    """The volume documents of one machine config, validated.

    Attributes:
        volumes: the VolumeConfig documents (STATE, EPHEMERAL, IMAGECACHE), in file order.
        user_volumes: the UserVolumeConfig documents (every volumeType), in file order.
        others: the RawVolumeConfig, ExistingVolumeConfig, SwapVolumeConfig and ZswapConfig documents, in file
            order (validated; volumed acts on each of them).
        ignored: how many documents of other kinds (not volume documents) were skipped; the
            v1alpha1 machine config document counts when it has no ``machine.systemDiskEncryption`` and no
            ``machine.features.diskQuotaSupport: true``.
        legacy_encryption: ``machine.systemDiskEncryption`` of the v1alpha1 document, as (volume name,
            encryption) pairs (see :mod:`._legacy`).
        disk_quota_support: ``machine.features.diskQuotaSupport`` of the v1alpha1 document (EPHEMERAL is
            mounted with ``prjquota``); false when absent, as in Talos.
    """

    volumes: tuple[VolumeConfigDocument, ...] = ()
    user_volumes: tuple[UserVolumeConfigDocument, ...] = ()
    others: tuple[OtherDocument, ...] = ()
    ignored: int = 0
    legacy_encryption: tuple[tuple[str, EncryptionSpec], ...] = ()
    disk_quota_support: bool = False
    _by_name: dict[str, VolumeConfigDocument] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({document.name: document for document in self.volumes})
        # Talos' precedence: a VolumeConfig's own encryption first, else the legacy v1alpha1 block
        # (check_config refuses a volume that has both, as Talos' V1Alpha1ConflictValidate).
        for name, legacy in self.legacy_encryption:
            document = self._by_name.get(name)
            if document is None:
                self._by_name[name] = VolumeConfigDocument(
                    api_version="v1alpha1", kind="VolumeConfig", name=name, encryption=legacy
                )
            elif document.effective_encryption is None:
                self._by_name[name] = document.model_copy(update={"encryption": legacy})

    def volume(self, name: str) -> VolumeConfigDocument | None:
        """The VolumeConfig for ``STATE`` or ``EPHEMERAL`` with its effective settings, None when the config
        has neither a VolumeConfig nor legacy encryption for it.

        When the VolumeConfig has no encryption (or there is none), the encryption is the v1alpha1
        document's ``machine.systemDiskEncryption`` block for the volume, if any; :attr:`volumes` keeps the
        documents as written.
        """
        return self._by_name.get(name)

    def user_volume(self, name: str) -> UserVolumeConfigDocument | None:
        """The UserVolumeConfig called ``name`` (without the ``u-`` prefix), None when absent."""
        return next((document for document in self.user_volumes if document.name == name), None)

    @property
    def documents(self) -> tuple[VolumeDocument, ...]:
        """All volume documents: system volumes first, then user volumes."""
        return (*self.volumes, *self.user_volumes)

    @property
    def labels(self) -> tuple[str, ...]:
        """What of the config volumed uses: ``Kind/name`` of each volume document, then
        ``v1alpha1/machine.systemDiskEncryption.<state|ephemeral>`` of each legacy block."""
        return (
            *(f"{document.kind}/{document.name}" for document in self.documents),
            *(f"{document.kind}/{document.name}" for document in self.others),
            *(f"{V1ALPHA1_LABEL}/{LEGACY_PATH}.{LEGACY_FIELDS[name]}" for name, _ in self.legacy_encryption),
            *((f"{V1ALPHA1_LABEL}/{DISK_QUOTA_PATH}",) if self.disk_quota_support else ()),
        )

    @property
    def not_supported_yet(self) -> tuple[str, ...]:
        """One line per valid document volumed loads but does not act on yet, in file order per kind: Talos
        would provision it, volumed leaves it alone (never silently: the config loader shows these)."""
        lines: list[str] = []
        for volume in self.volumes:
            if not volume.managed:
                # Only IMAGECACHE: Talos' ImageCacheConfigController makes its VolumeConfig only with
                # machine.features.imageCache.localEnabled, for the registryd service volumed does not run.
                lines.append(
                    f"VolumeConfig/{volume.name}: accepted but not provisioned: Talos makes this volume only"
                    " for its image cache (machine.features.imageCache.localEnabled), which volumed does not"
                    " run"
                )
        for user in self.user_volumes:
            if not user.managed:
                lines.append(
                    f"UserVolumeConfig/{user.name}: volumeType {user.effective_volume_type} is accepted but"
                    " not provisioned by this volumed yet"
                )
        # Every document of `others` is acted on: raw, swap and existing volumes get a VolumeConfig, and
        # ZswapConfig is applied by the Zswap controller.
        return tuple(lines)


def _format_loc(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-plain", "function-after", "function-before") or part.startswith("function-"):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path


def _describe_error(error: ErrorDetails) -> str:
    """The problem of one pydantic error, never its input (``include_input=False`` is not enough: some
    messages quote it); unknown fields are handled by :func:`_issue_of`."""
    kind = error["type"]
    if kind == "value_error":
        context = error.get("ctx") or {}
        return str(context.get("error", error["msg"])).removeprefix("Value error, ")
    if kind == "literal_error":
        context = error.get("ctx") or {}
        return f"expected {context.get('expected', 'another value')}"
    return _TYPE_MESSAGES.get(kind, f"invalid value ({kind})")


def _issue_of(label: str, error: ErrorDetails, raw: object, positions: KeyPositions) -> ConfigIssue:
    """One pydantic error as an issue; a key that is no field name is pointed at by its line, not named."""
    location = tuple(error["loc"])
    kind = error["type"]
    if kind not in ("extra_forbidden", "invalid_key") or not location:
        return ConfigIssue(label, _format_loc(location), _describe_error(error))
    name = location[-1]
    if kind == "extra_forbidden" and name in field_names():
        if name in TALOS_UNSUPPORTED_FIELDS:
            return ConfigIssue(
                label, _format_loc(location), "field of Talos' schema that volumed does not support"
            )
        meant = _meant(name)  # volumed's Python name for a field (key_size): say Talos' name
        hint = f' (did you mean "{meant}"?)' if meant is not None else ""
        return ConfigIssue(label, _format_loc(location), "unknown field" + hint)
    position = positions.of(_walk(raw, location[:-1]), name)
    where = f" at line {position[0]}, column {position[1]}" if position is not None else ""
    problem = "unknown field" if kind == "extra_forbidden" else "field names must be strings"
    meant = _meant(name) if kind == "extra_forbidden" and isinstance(name, str) else None
    if meant is not None:  # only a field name in another case or spelling is named: it holds no secret
        problem = f'unknown field "{name}" (did you mean "{meant}"?)'
    return ConfigIssue(label, _format_loc(location[:-1]), problem + where)


def _fold(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


@functools.cache
def _yaml_field_names() -> dict[str, tuple[str, ...]]:
    """Every YAML field name of the documents volumed reads (the v1alpha1 block too), by its folded form."""
    names: dict[str, tuple[str, ...]] = {}
    pending: list[type[BaseModel]] = [*_KINDS.values(), V1Alpha1Document]
    seen: set[type[BaseModel]] = set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            choices = info.validation_alias.choices if isinstance(info.validation_alias, AliasChoices) else []
            for yaml_name in [info.alias or name, *(c for c in choices if isinstance(c, str))]:
                known = names.get(_fold(yaml_name), ())
                if yaml_name not in known and (yaml_name != name or not info.validation_alias):
                    names[_fold(yaml_name)] = (*known, yaml_name)
            pending.extend(_models_in(info.annotation))
    return names


def _meant(name: str) -> str | None:
    """The field name ``name`` is a misspelling of (other case, ``_`` or ``-``), None when it is none."""
    known = _yaml_field_names().get(_fold(name), ())
    return known[0] if known and name not in known and name.isascii() else None


def _walk(raw: object, location: tuple[int | str, ...]) -> object:
    """The value at ``location`` in the document as loaded (None when the path does not lead anywhere)."""
    node = raw
    for part in location:
        if isinstance(part, str) and part.startswith("function-"):
            continue
        if isinstance(node, dict):
            node = next((v for k, v in node.items() if resolved_value(k) == part), None)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node


def _count_expanded(document: object, budget: int) -> int:
    """How many of ``budget`` nodes are left after the document, counting aliased nodes each time they are
    used (negative when it has more): aliases can make a small text a huge, or cyclic, structure."""
    stack = [document]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            return budget
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list | tuple | set | frozenset):
            stack.extend(node)
    return budget


def _label(kind: str, name: object, index: int) -> str:
    """``Kind/name``, with the name only when it could be the volume's (else ``Kind (document N)``); a
    ZswapConfig, which has no name, is ``ZswapConfig``."""
    if kind == "ZswapConfig":
        return kind
    shown = (
        isinstance(name, str)
        and (kind != "VolumeConfig" or name in SYSTEM_VOLUMES)
        and 0 < len(name) <= _MAX_NAME_SHOWN
        and all(char.isascii() and (char.isalnum() or char == "-") for char in name)
    )
    return f"{kind}/{name}" if shown else f"{kind} (document {index})"


def _iter_documents(text: str) -> Iterator[tuple[int, object, KeyPositions, ConfigIssue | None]]:
    """Yield (1-based index, document, key positions, YAML issue); a YAML error ends the stream."""
    index = 0
    empty = KeyPositions()
    try:
        for index, (document, positions) in enumerate(load_documents(text), start=1):
            yield index, document, positions, None
    except yaml.YAMLError as error:
        issue = ConfigIssue(f"document {index + 1}", "", f"invalid YAML: {describe_yaml_error(error)}")
        yield index + 1, None, empty, issue
    except (RecursionError, ValueError, TypeError, OverflowError) as error:
        issue = ConfigIssue(f"document {index + 1}", "", f"invalid YAML: {type(error).__name__}")
        yield index + 1, None, empty, issue


def check_config(source: str | bytes) -> tuple[MachineConfig | None, list[ConfigIssue]]:
    """Parse and validate machine-config text; return the config (None when invalid) and every issue.

    Documents of other kinds (network documents...) are skipped with a debug log. Every Talos v1.12 volume
    document is validated, also those volumed does not act on yet (:attr:`MachineConfig.not_supported_yet`).
    Of the v1alpha1 machine config
    document only ``machine.systemDiskEncryption`` is read (strictly); its other fields are ignored.

    Bounded (see :mod:`._limits`): a config past a limit gets one issue naming it. CPU-bound for up to a few
    seconds: call it from a worker thread in async code. No issue quotes the text of the config.
    """
    with shared_selector_budget():
        return _check_config(source)


def _check_config(source: str | bytes) -> tuple[MachineConfig | None, list[ConfigIssue]]:
    size = len(source) if isinstance(source, bytes) else len(source.encode("utf-8", "surrogatepass"))
    if size > MAX_CONFIG_BYTES:
        return None, [ConfigIssue("config", "", f"too large: more than {MAX_CONFIG_BYTES} bytes (the limit)")]
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as error:
            return None, [ConfigIssue("config", "", f"not UTF-8 text (byte {error.start})")]
    issues: list[ConfigIssue] = []
    volumes: list[VolumeConfigDocument] = []
    user_volumes: list[UserVolumeConfigDocument] = []
    others: list[OtherDocument] = []
    seen: dict[str, str] = {}  # Kind/name -> its label in issues
    ignored = 0
    legacy: dict[str, EncryptionSpec] | None = None
    disk_quota = False
    budget = MAX_EXPANDED_NODES
    documents = 0
    for index, raw, positions, yaml_issue in _iter_documents(source):
        if yaml_issue is not None:
            issues.append(yaml_issue)
            break
        if index > MAX_DOCUMENTS:
            issues.append(
                ConfigIssue("config", "", f"too many documents: more than {MAX_DOCUMENTS} (the limit)")
            )
            break
        if raw is None:
            continue
        documents += 1
        if not isinstance(raw, dict):
            issues.append(
                ConfigIssue(f"document {index}", "", f"expected a mapping, got {type(raw).__name__}")
            )
            continue
        budget = _count_expanded(raw, budget)
        if budget < 0:
            message = (
                f"too large: more than {MAX_EXPANDED_NODES} nodes in the config with aliases expanded"
                " (the limit), or recursive aliases"
            )
            issues.append(ConfigIssue(f"document {index}", "", message))
            break
        kind = source_text(raw.get("kind"))
        if is_v1alpha1_document(kind, source_text(raw.get("version"))):
            if legacy is not None:
                issues.append(ConfigIssue(V1ALPHA1_LABEL, "", "duplicate document"))
                continue
            legacy, disk_quota = _parse_legacy(raw, positions, issues)
            if not legacy and not disk_quota:
                _log.debug("ignoring config document of another kind", document=index)
                ignored += 1
            continue
        model = _KINDS.get(kind) if isinstance(kind, str) else None
        if model is None or not isinstance(kind, str):
            _log.debug("ignoring config document of another kind", document=index)
            ignored += 1
            continue
        name = source_text(raw.get("name"))
        label = _label(kind, name, index)
        document = _parse_document(model, raw, positions, label, issues)
        if document is None:
            continue
        key = f"{kind}/{document.name}"
        if key in seen:
            issues.append(ConfigIssue(label, "", "duplicate document"))
            continue
        seen[key] = label
        other_kind = _CONFLICTING_KINDS.get(kind)
        if other_kind is not None and f"{other_kind}/{document.name}" in seen:
            earlier = seen[f"{other_kind}/{document.name}"]
            issues.append(ConfigIssue(label, "", f"conflicting documents: {earlier} and {label}"))
            continue
        if isinstance(document, VolumeConfigDocument):
            volumes.append(document)
        elif isinstance(document, UserVolumeConfigDocument):
            user_volumes.append(document)
        else:
            others.append(document)
    issues += _conflicts(volumes, legacy or {})
    if not documents and not issues:
        # What a reader sees of a file being written (truncated, not filled yet): applying it as "no volume
        # documents" tore down user volumes and key slots of the config being replaced.
        issues.append(ConfigIssue("config", "", NO_DOCUMENTS))
    if issues:
        return None, issues
    return (
        MachineConfig(
            volumes=tuple(volumes),
            user_volumes=tuple(user_volumes),
            others=tuple(others),
            ignored=ignored,
            legacy_encryption=tuple((legacy or {}).items()),
            disk_quota_support=disk_quota,
        ),
        [],
    )


def _conflicts(volumes: list[VolumeConfigDocument], legacy: dict[str, EncryptionSpec]) -> list[ConfigIssue]:
    """Talos' ``V1Alpha1ConflictValidate``: a volume's encryption in its VolumeConfig and in the legacy block
    is an error (Talos refuses the config; the VolumeConfig's would otherwise silently win)."""
    return [
        ConfigIssue(
            f"VolumeConfig/{document.name}",
            "encryption",
            f'system disk encryption for "{document.name}" is configured in both v1alpha1.Config and'
            " VolumeConfig",
        )
        for document in volumes
        if document.name in legacy and document.effective_encryption is not None
    ]


def _parse_legacy(
    raw: dict[Any, Any], positions: KeyPositions, issues: list[ConfigIssue]
) -> tuple[dict[str, EncryptionSpec], bool]:
    """``machine.systemDiskEncryption`` of the v1alpha1 document, by volume name (empty when absent), and
    ``machine.features.diskQuotaSupport``; issues are added to ``issues`` with paths from the document's
    root."""
    issues.extend(_misspelt_machine_fields(raw, positions))
    try:
        document = V1Alpha1Document.from_input(raw)
    except ValidationError as error:
        details = error.errors(include_input=False, include_url=False, include_context=True)
        issues.extend(_issue_of(V1ALPHA1_LABEL, d, raw, positions) for d in details)
        return {}, False
    except (RecursionError, TypeError, ValueError) as error:
        issues.append(ConfigIssue(V1ALPHA1_LABEL, "", f"cannot be read: {type(error).__name__}"))
        return {}, False
    block = document.system_disk_encryption
    if block is None:
        return {}, document.disk_quota_support
    specs: dict[str, EncryptionSpec] = {}
    for name, spec in block.specs().items():
        where = f"{LEGACY_PATH}.{LEGACY_FIELDS[name]}"
        problems = validate_legacy_encryption(spec, volume=name)
        issues.extend(
            ConfigIssue(V1ALPHA1_LABEL, f"{where}.{path}" if path else where, m) for path, m in problems
        )
        specs[name] = spec
    return specs, document.disk_quota_support


def _misspelt_machine_fields(raw: dict[Any, Any], positions: KeyPositions) -> list[ConfigIssue]:
    """``machine``'s other fields are ignored, but one that spells ``systemDiskEncryption`` another way
    (``system_disk_encryption``) is an unknown field to Talos' strict decoder: never silently dropped."""
    machine = next((value for key, value in raw.items() if resolved_value(key) == "machine"), None)
    if not isinstance(machine, dict):
        return []
    issues: list[ConfigIssue] = []
    for raw_key in machine:
        key = resolved_value(raw_key)
        if isinstance(key, str) and _meant(key) == LEGACY_FIELD:
            position = positions.of(machine, key)
            where = f" at line {position[0]}, column {position[1]}" if position is not None else ""
            problem = f'unknown field "{key}" (did you mean "{LEGACY_FIELD}"?)'
            issues.append(ConfigIssue(V1ALPHA1_LABEL, "machine", problem + where))
    return issues


def _parse_document(
    model: _DocumentModel,
    raw: dict[Any, Any],
    positions: KeyPositions,
    label: str,
    issues: list[ConfigIssue],
) -> VolumeDocument | OtherDocument | None:
    try:
        document: VolumeDocument | OtherDocument = model.from_input(raw)
    except ValidationError as error:
        details = error.errors(include_input=False, include_url=False, include_context=True)
        issues.extend(_issue_of(label, d, raw, positions) for d in details)
        # Drop the fields that failed and check the rest too, so one typo does not hide the other problems.
        pruned = _without_fields(raw, [tuple(d["loc"]) for d in details])
        if pruned is not None:
            try:
                partial: VolumeDocument | OtherDocument = model.from_input(pruned)
            except (ValidationError, RecursionError, TypeError, ValueError):
                return None
            bad = [_format_loc(tuple(d["loc"])) for d in details]
            issues.extend(
                ConfigIssue(label, path, message)
                for path, message in validate_document(partial)
                if not any(_related(path, b) for b in bad)
            )
        return None
    except (RecursionError, TypeError, ValueError) as error:
        issues.append(ConfigIssue(label, "", f"cannot be read: {type(error).__name__}"))
        return None
    rule_issues = validate_document(document)
    issues.extend(ConfigIssue(label, path, message) for path, message in rule_issues)
    return None if rule_issues else document


def _related(path: str, bad: str) -> bool:
    """Whether ``path`` is ``bad``, inside it, its parent or a sibling's (its issue may stem from the dropped
    field: a misspelt ``provisioning.disk_selector`` is why ``provisioning.diskSelector.match`` is
    missing)."""
    parent, _, field_name = bad.rpartition(".")
    if parent and path.startswith(parent + "."):
        sibling = path.removeprefix(parent + ".").split(".")[0].split("[")[0]
        if _fold(sibling) == _fold(field_name):
            return True
    return any(a == b or a.startswith((b + ".", b + "[")) or not b for a, b in ((path, bad), (bad, path)))


def _without_fields(raw: dict[Any, Any], locations: list[tuple[int | str, ...]]) -> dict[Any, Any] | None:
    """A copy of ``raw`` without the mapping keys at ``locations``; None when a location cannot be dropped."""
    pruned = copy.deepcopy(raw)
    for location in locations:
        parts = [part for part in location if not (isinstance(part, str) and part.startswith("function-"))]
        if not parts or not isinstance(parts[-1], str):
            return None
        node: Any = pruned
        for part in parts[:-1]:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return None
        if not isinstance(node, dict) or parts[-1] not in node:
            return None
        del node[parts[-1]]
    return pruned


def read_config_file(path: Path | BinaryIO) -> bytes:
    """The bytes of a config file, read up to one byte past MAX_CONFIG_BYTES (enough for check_config to
    refuse a file that is too large without reading all of it into memory).

    Raises:
        OSError: the file cannot be read.
    """
    if isinstance(path, Path):
        with path.open("rb") as file:
            return file.read(MAX_CONFIG_BYTES + 1)
    return path.read(MAX_CONFIG_BYTES + 1)


def load_config(source: str | bytes) -> MachineConfig:
    """Parse and validate machine-config text.

    Raises:
        ConfigInvalidError: with every issue of every document.
    """
    config, issues = check_config(source)
    if config is None:
        raise ConfigInvalidError(issues)
    return config
