"""Multi-document YAML -> the VolumeConfig and UserVolumeConfig documents, with every issue collected."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import structlog
import yaml
from pydantic import ValidationError

from ._documents import UserVolumeConfigDocument, VolumeConfigDocument
from ._errors import ConfigInvalidError, ConfigIssue
from ._rules import validate_document
from ._yaml import load_documents, source_text

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pydantic_core import ErrorDetails

    from ._documents import VolumeDocument

_log = structlog.get_logger(__name__)

_KINDS: Final[dict[str, type[VolumeConfigDocument] | type[UserVolumeConfigDocument]]] = {
    "VolumeConfig": VolumeConfigDocument,
    "UserVolumeConfig": UserVolumeConfigDocument,
}
# VolumeConfig names Talos accepts for volumes volumed does not manage: ignored like foreign documents.
TALOS_ONLY_SYSTEM_VOLUMES: Final = ("IMAGECACHE", "ETCD", "CRI", "KUBELET", "LOG")
# Fields of Talos' schema volumed does not implement, named as such instead of "unknown field".
_TALOS_UNSUPPORTED_FIELDS: Final = frozenset({"mount", "trim", "scrub", "projectQuotaSupport", "xfs"})

# Aliases can make a small YAML file expand into a huge (or cyclic) structure; stop walking it after this many
# nodes so validation time stays bounded.
MAX_NODES: Final = 100_000

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
}


@dataclass(frozen=True)
class MachineConfig:
    """The volume documents of one machine config, validated.

    Attributes:
        volumes: the VolumeConfig documents (STATE, EPHEMERAL), in file order.
        user_volumes: the UserVolumeConfig documents, in file order.
        ignored: how many documents of other kinds (or for volumes volumed does not manage) were skipped.
    """

    volumes: tuple[VolumeConfigDocument, ...] = ()
    user_volumes: tuple[UserVolumeConfigDocument, ...] = ()
    ignored: int = 0
    _by_name: dict[str, VolumeConfigDocument] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({document.name: document for document in self.volumes})

    def volume(self, name: str) -> VolumeConfigDocument | None:
        """The VolumeConfig for ``STATE`` or ``EPHEMERAL``, None when the config has none."""
        return self._by_name.get(name)

    def user_volume(self, name: str) -> UserVolumeConfigDocument | None:
        """The UserVolumeConfig called ``name`` (without the ``u-`` prefix), None when absent."""
        return next((document for document in self.user_volumes if document.name == name), None)

    @property
    def documents(self) -> tuple[VolumeDocument, ...]:
        """All volume documents: system volumes first, then user volumes."""
        return (*self.volumes, *self.user_volumes)


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
    kind = error["type"]
    if kind == "extra_forbidden":
        name = str(error["loc"][-1]) if error["loc"] else ""
        if name in _TALOS_UNSUPPORTED_FIELDS:
            return "field of Talos' schema that volumed does not support"
        return "unknown field"
    if kind == "value_error":
        context = error.get("ctx") or {}
        return str(context.get("error", error["msg"])).removeprefix("Value error, ")
    if kind == "literal_error":
        context = error.get("ctx") or {}
        return f"expected {context.get('expected', 'another value')}"
    # pydantic's own messages describe the expected type and never quote the input; use them as fallback.
    return _TYPE_MESSAGES.get(kind, error["msg"])


def _too_large(document: object) -> bool:
    """Whether the document has more than MAX_NODES nodes, counting aliased nodes each time they are used."""
    stack = [document]
    seen = 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            return True
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list | tuple | set | frozenset):
            stack.extend(node)
    return False


def _label(kind: str, name: object, index: int) -> str:
    if isinstance(name, str) and name:
        return f"{kind}/{name}"
    return f"{kind} (document {index})"


def _iter_documents(text: str) -> Iterator[tuple[int, object, ConfigIssue | None]]:
    """Yield (1-based index, document, YAML issue); a YAML error ends the stream."""
    index = 0
    try:
        for index, document in enumerate(load_documents(text), start=1):
            yield index, document, None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or type(error).__name__
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        yield index + 1, None, ConfigIssue(f"document {index + 1}", "", f"invalid YAML: {where}{problem}")
    except (RecursionError, ValueError, TypeError, OverflowError) as error:
        yield (
            index + 1,
            None,
            ConfigIssue(f"document {index + 1}", "", f"invalid YAML: {type(error).__name__}"),
        )


def check_config(source: str | bytes) -> tuple[MachineConfig | None, list[ConfigIssue]]:
    """Parse and validate machine-config text; return the config (None when invalid) and every issue.

    Documents of other kinds (the v1alpha1 machine config, network documents...) are skipped with a debug
    log, as are VolumeConfig documents for system volumes Talos has but volumed does not manage.
    """
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as error:
            return None, [ConfigIssue("config", "", f"not UTF-8 text (byte {error.start})")]
    issues: list[ConfigIssue] = []
    volumes: list[VolumeConfigDocument] = []
    user_volumes: list[UserVolumeConfigDocument] = []
    seen: set[str] = set()
    ignored = 0
    for index, raw, yaml_issue in _iter_documents(source):
        if yaml_issue is not None:
            issues.append(yaml_issue)
            break
        if raw is None:
            continue
        if not isinstance(raw, dict):
            issues.append(
                ConfigIssue(f"document {index}", "", f"expected a mapping, got {type(raw).__name__}")
            )
            continue
        if _too_large(raw):
            message = f"too large: more than {MAX_NODES} nodes (or recursive aliases)"
            issues.append(ConfigIssue(f"document {index}", "", message))
            continue
        kind = source_text(raw.get("kind"))
        model = _KINDS.get(kind) if isinstance(kind, str) else None
        if model is None or not isinstance(kind, str):
            _log.debug("ignoring config document of another kind", document=index, kind=str(kind)[:64])
            ignored += 1
            continue
        name = source_text(raw.get("name"))
        if kind == "VolumeConfig" and name in TALOS_ONLY_SYSTEM_VOLUMES:
            _log.debug(
                "ignoring VolumeConfig for a volume volumed does not manage", document=index, name=name
            )
            ignored += 1
            continue
        label = _label(kind, name, index)
        document = _parse_document(model, raw, label, issues)
        if document is None:
            continue
        if label in seen:
            issues.append(ConfigIssue(label, "", "duplicate document"))
            continue
        seen.add(label)
        if isinstance(document, VolumeConfigDocument):
            volumes.append(document)
        else:
            user_volumes.append(document)
    if issues:
        return None, issues
    return MachineConfig(volumes=tuple(volumes), user_volumes=tuple(user_volumes), ignored=ignored), []


def _parse_document(
    model: type[VolumeConfigDocument] | type[UserVolumeConfigDocument],
    raw: dict[Any, Any],
    label: str,
    issues: list[ConfigIssue],
) -> VolumeDocument | None:
    try:
        document: VolumeDocument = model.model_validate(raw)
    except ValidationError as error:
        details = error.errors(include_input=False, include_url=False)
        issues.extend(ConfigIssue(label, _format_loc(tuple(d["loc"])), _describe_error(d)) for d in details)
        # Drop the fields that failed and check the rest too, so one typo does not hide the other problems.
        pruned = _without_fields(raw, [tuple(d["loc"]) for d in details])
        if pruned is not None:
            try:
                partial: VolumeDocument = model.model_validate(pruned)
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
    """Whether ``path`` is ``bad``, inside it or its parent (its issue may stem from the dropped field)."""
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


def load_config(source: str | bytes) -> MachineConfig:
    """Parse and validate machine-config text.

    Raises:
        ConfigInvalidError: with every issue of every document.
    """
    config, issues = check_config(source)
    if config is None:
        raise ConfigInvalidError(issues)
    return config
