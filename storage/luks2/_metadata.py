"""The LUKS2 JSON metadata as typed, frozen dataclasses, serialised byte-identical to cryptsetup 2.6.

cryptsetup keeps JSON objects in insertion order and writes them compactly; ``to_json`` reproduces that: known
keys in cryptsetup's order, unknown keys after them in their original order, ids in the order they were added.
Parsing checks shapes and types only; the cross-object rules live in ``_validate``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ._errors import InvalidHeaderError, InvalidMetadataError

if TYPE_CHECKING:
    from collections.abc import Mapping

JsonObject = dict[str, Any]

PBKDF2 = "pbkdf2"
ARGON2_TYPES = ("argon2i", "argon2id")


def _fail(where: str, what: str) -> InvalidHeaderError:
    return InvalidHeaderError(f"LUKS2 metadata {where}: {what}")


def _obj(value: object, where: str) -> JsonObject:
    if not isinstance(value, dict):
        raise _fail(where, "is not a JSON object")
    return value


def _str(obj: JsonObject, key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _fail(where, f"{key!r} is missing or not a string")
    return value


def _int(obj: JsonObject, key: str, where: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(where, f"{key!r} is missing or not an integer")
    return value


def _u64(obj: JsonObject, key: str, where: str) -> int:
    """uint64 values are decimal strings in LUKS2 JSON."""
    value = obj.get(key)
    if not isinstance(value, str) or not value.isdigit() or not value.isascii():
        raise _fail(where, f"{key!r} is missing or not a decimal string")
    number = int(value)
    if number >= 1 << 64:
        raise _fail(where, f"{key!r} does not fit in 64 bits")
    return number


def _b64(obj: JsonObject, key: str, where: str) -> bytes:
    text = _str(obj, key, where)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(where, f"{key!r} is not valid base64") from None


def _ids(value: object, where: str, key: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and _is_id(v) for v in value):
        raise _fail(where, f"{key!r} must be an array of decimal id strings")
    return tuple(int(v) for v in value)


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _extra(obj: JsonObject, known: tuple[str, ...]) -> JsonObject:
    return {k: v for k, v in obj.items() if k not in known}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Pbkdf2Kdf:
    """PBKDF2 key slot parameters."""

    hash: str
    iterations: int
    salt: bytes = field(repr=False)
    type: str = PBKDF2
    extra: JsonObject = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> JsonObject:
        out: JsonObject = {"type": self.type, "hash": self.hash, "iterations": self.iterations}
        out.update(self.extra)
        out["salt"] = b64(self.salt)
        return out


@dataclass(frozen=True)
class Argon2Kdf:
    """Argon2i / Argon2id key slot parameters (memory in KiB)."""

    type: str
    time: int
    memory: int
    cpus: int
    salt: bytes = field(repr=False)
    extra: JsonObject = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> JsonObject:
        out: JsonObject = {"type": self.type, "time": self.time, "memory": self.memory, "cpus": self.cpus}
        out.update(self.extra)
        out["salt"] = b64(self.salt)
        return out


Kdf = Pbkdf2Kdf | Argon2Kdf


def parse_kdf(obj: JsonObject, where: str) -> Kdf:
    """cryptsetup 2.6 tolerates unknown keys in a kdf object; they are kept (before ``salt``) verbatim."""
    kind = _str(obj, "type", where)
    if kind == PBKDF2:
        return Pbkdf2Kdf(
            hash=_str(obj, "hash", where),
            iterations=_int(obj, "iterations", where),
            salt=_b64(obj, "salt", where),
            extra=_extra(obj, ("type", "hash", "iterations", "salt")),
        )
    if kind in ARGON2_TYPES:
        return Argon2Kdf(
            type=kind,
            time=_int(obj, "time", where),
            memory=_int(obj, "memory", where),
            cpus=_int(obj, "cpus", where),
            salt=_b64(obj, "salt", where),
            extra=_extra(obj, ("type", "time", "memory", "cpus", "salt")),
        )
    raise _fail(where, f"unknown kdf type {kind!r}")


@dataclass(frozen=True)
class Keyslot:
    """A ``luks2`` key slot: where its AF-split, encrypted key material lives and how to derive its key."""

    key_size: int
    area_offset: int
    area_size: int
    area_encryption: str
    area_key_size: int
    kdf: Kdf
    af_hash: str
    af_stripes: int = 4000
    priority: int | None = None
    extra: JsonObject = field(default_factory=dict, compare=False)

    type = "luks2"

    @classmethod
    def from_dict(cls, obj: JsonObject, where: str) -> Keyslot:
        af = _obj(obj.get("af"), f"{where}.af")
        area = _obj(obj.get("area"), f"{where}.area")
        if _str(af, "type", f"{where}.af") != "luks1":
            raise _fail(f"{where}.af", "type must be 'luks1'")
        if _str(area, "type", f"{where}.area") != "raw":
            raise _fail(f"{where}.area", "type must be 'raw'")
        # any integer parses (as in cryptsetup); a slot with a priority above 2 is never used to unlock
        priority = _int(obj, "priority", where) if "priority" in obj else None
        return cls(
            key_size=_int(obj, "key_size", where),
            area_offset=_u64(area, "offset", f"{where}.area"),
            area_size=_u64(area, "size", f"{where}.area"),
            area_encryption=_str(area, "encryption", f"{where}.area"),
            area_key_size=_int(area, "key_size", f"{where}.area"),
            kdf=parse_kdf(_obj(obj.get("kdf"), f"{where}.kdf"), f"{where}.kdf"),
            af_hash=_str(af, "hash", f"{where}.af"),
            af_stripes=_int(af, "stripes", f"{where}.af"),
            priority=priority,
            extra=_extra(obj, ("type", "key_size", "af", "area", "kdf", "priority")),
        )

    def to_dict(self) -> JsonObject:
        out: JsonObject = {
            "type": self.type,
            "key_size": self.key_size,
            "af": {"type": "luks1", "stripes": self.af_stripes, "hash": self.af_hash},
            "area": {
                "type": "raw",
                "offset": str(self.area_offset),
                "size": str(self.area_size),
                "encryption": self.area_encryption,
                "key_size": self.area_key_size,
            },
            "kdf": self.kdf.to_dict(),
        }
        out.update(self.extra)
        if self.priority is not None:
            out["priority"] = self.priority
        return out


@dataclass(frozen=True)
class OpaqueKeyslot:
    """A key slot of another type (e.g. ``reencrypt``): kept verbatim, only its area is interpreted."""

    type: str
    area_offset: int
    area_size: int
    raw: JsonObject = field(compare=False, repr=False)
    priority: int | None = None

    @classmethod
    def from_dict(cls, obj: JsonObject, where: str) -> OpaqueKeyslot:
        area = _obj(obj.get("area"), f"{where}.area")
        offset = _u64(area, "offset", f"{where}.area") if "offset" in area else 0
        size = _u64(area, "size", f"{where}.area") if "size" in area else 0
        priority = obj.get("priority")
        return cls(
            type=_str(obj, "type", where),
            area_offset=offset,
            area_size=size,
            raw=obj,
            priority=priority if isinstance(priority, int) else None,
        )

    def to_dict(self) -> JsonObject:
        return self.raw


AnyKeyslot = Keyslot | OpaqueKeyslot


@dataclass(frozen=True)
class Segment:
    """A data segment; ``size`` None means ``dynamic`` (to the end of the device)."""

    type: str
    offset: int
    size: int | None
    iv_tweak: int = 0
    encryption: str = ""
    sector_size: int = 512
    extra: JsonObject = field(default_factory=dict, compare=False)

    @property
    def is_backup(self) -> bool:
        """A ``backup-*`` segment kept during reencryption: not part of the data layout."""
        flags = self.extra.get("flags")
        return isinstance(flags, list) and any(isinstance(f, str) and f.startswith("backup-") for f in flags)

    @classmethod
    def from_dict(cls, obj: JsonObject, where: str) -> Segment:
        kind = _str(obj, "type", where)
        size_text = obj.get("size")
        size = None if size_text == "dynamic" else _u64(obj, "size", where)
        if kind == "crypt":
            return cls(
                type=kind,
                offset=_u64(obj, "offset", where),
                size=size,
                iv_tweak=_u64(obj, "iv_tweak", where),
                encryption=_str(obj, "encryption", where),
                sector_size=_int(obj, "sector_size", where),
                extra=_extra(obj, ("type", "offset", "size", "iv_tweak", "encryption", "sector_size")),
            )
        return cls(
            type=kind,
            offset=_u64(obj, "offset", where),
            size=size,
            extra=_extra(obj, ("type", "offset", "size")),
        )

    def to_dict(self) -> JsonObject:
        out: JsonObject = {
            "type": self.type,
            "offset": str(self.offset),
            "size": "dynamic" if self.size is None else str(self.size),
        }
        if self.type == "crypt":
            out.update(iv_tweak=str(self.iv_tweak), encryption=self.encryption, sector_size=self.sector_size)
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class Digest:
    """A ``pbkdf2`` digest that verifies the volume key of the slots and segments it lists."""

    keyslots: tuple[int, ...]
    segments: tuple[int, ...]
    hash: str
    iterations: int
    salt: bytes = field(repr=False)
    digest: bytes = field(repr=False)
    type: str = PBKDF2

    @classmethod
    def from_dict(cls, obj: JsonObject, where: str) -> Digest:
        if _str(obj, "type", where) != PBKDF2:
            raise _fail(where, "only pbkdf2 digests are supported")
        return cls(
            keyslots=_ids(obj.get("keyslots"), where, "keyslots"),
            segments=_ids(obj.get("segments"), where, "segments"),
            hash=_str(obj, "hash", where),
            iterations=_int(obj, "iterations", where),
            salt=_b64(obj, "salt", where),
            digest=_b64(obj, "digest", where),
        )

    def to_dict(self) -> JsonObject:
        return {
            "type": self.type,
            "keyslots": [str(k) for k in self.keyslots],
            "segments": [str(s) for s in self.segments],
            "hash": self.hash,
            "iterations": self.iterations,
            "salt": b64(self.salt),
            "digest": b64(self.digest),
        }


@dataclass(frozen=True)
class Token:
    """A token: its ``type`` and ``keyslots`` are interpreted, the whole object is kept as imported."""

    type: str
    keyslots: tuple[int, ...]
    body: JsonObject = field(compare=False)

    @classmethod
    def from_dict(cls, obj: JsonObject, where: str) -> Token:
        kind = obj.get("type")
        if not isinstance(kind, str) or not kind:
            raise _fail(where, "token 'type' is missing or empty")
        return cls(type=kind, keyslots=_ids(obj.get("keyslots"), where, "keyslots"), body=obj)

    def to_dict(self) -> JsonObject:
        return self.body

    def with_keyslots(self, keyslots: tuple[int, ...]) -> Token:
        body = dict(self.body)
        body["keyslots"] = [str(k) for k in keyslots]
        return Token(type=self.type, keyslots=keyslots, body=body)


@dataclass(frozen=True)
class Config:
    """The ``config`` object: area sizes, activation flags and requirements."""

    json_size: int
    keyslots_size: int
    flags: tuple[str, ...] | None = None
    requirements: JsonObject | None = None
    extra: JsonObject = field(default_factory=dict, compare=False)

    @property
    def mandatory_requirements(self) -> tuple[str, ...]:
        if self.requirements is None:
            return ()
        mandatory = self.requirements.get("mandatory", [])
        return tuple(str(m) for m in mandatory) if isinstance(mandatory, list) else ()

    @classmethod
    def from_dict(cls, obj: JsonObject, where: str) -> Config:
        flags = obj.get("flags")
        if flags is not None and (not isinstance(flags, list) or not all(isinstance(f, str) for f in flags)):
            raise _fail(where, "'flags' must be an array of strings")
        requirements = obj.get("requirements")
        if requirements is not None:
            requirements = _obj(requirements, f"{where}.requirements")
            mandatory = requirements.get("mandatory", [])
            if not isinstance(mandatory, list) or not all(isinstance(m, str) for m in mandatory):
                raise _fail(f"{where}.requirements", "'mandatory' must be an array of strings")
        return cls(
            json_size=_u64(obj, "json_size", where),
            keyslots_size=_u64(obj, "keyslots_size", where),
            flags=tuple(flags) if flags is not None else None,
            requirements=requirements,
            extra=_extra(obj, ("json_size", "keyslots_size", "flags", "requirements")),
        )

    def to_dict(self) -> JsonObject:
        out: JsonObject = {"json_size": str(self.json_size), "keyslots_size": str(self.keyslots_size)}
        if self.flags is not None:
            out["flags"] = list(self.flags)
        if self.requirements is not None:
            out["requirements"] = self.requirements
        out.update(self.extra)
        return out


def _section(top: JsonObject, name: str) -> dict[int, JsonObject]:
    obj = _obj(top.get(name), name)
    out: dict[int, JsonObject] = {}
    for key, value in obj.items():
        if not _is_id(key):
            raise _fail(name, f"object key {key!r} is not a decimal id")
        out[int(key)] = _obj(value, f"{name}.{key}")
    return out


@dataclass(frozen=True)
class Metadata:
    """The whole JSON area content. Collections map ids to objects, in on-disk (insertion) order."""

    keyslots: Mapping[int, AnyKeyslot]
    tokens: Mapping[int, Token]
    segments: Mapping[int, Segment]
    digests: Mapping[int, Digest]
    config: Config
    extra: JsonObject = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, top: JsonObject) -> Metadata:
        top = _obj(top, "top level")
        keyslots: dict[int, AnyKeyslot] = {}
        for i, obj in _section(top, "keyslots").items():
            where = f"keyslots.{i}"
            if _str(obj, "type", where) == "luks2":
                keyslots[i] = Keyslot.from_dict(obj, where)
            else:
                keyslots[i] = OpaqueKeyslot.from_dict(obj, where)
        return cls(
            keyslots=keyslots,
            tokens={i: Token.from_dict(o, f"tokens.{i}") for i, o in _section(top, "tokens").items()},
            segments={i: Segment.from_dict(o, f"segments.{i}") for i, o in _section(top, "segments").items()},
            digests={i: Digest.from_dict(o, f"digests.{i}") for i, o in _section(top, "digests").items()},
            config=Config.from_dict(_obj(top.get("config"), "config"), "config"),
            extra=_extra(top, ("keyslots", "tokens", "segments", "digests", "config")),
        )

    @classmethod
    def from_json(cls, text: bytes) -> Metadata:
        if json_too_deep(text):
            raise InvalidMetadataError(f"JSON area nested too deep (more than {MAX_JSON_DEPTH} levels)")
        try:
            top = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidHeaderError(f"LUKS2 metadata is not valid JSON: {type(exc).__name__}") from None
        return cls.from_dict(top)

    def to_dict(self) -> JsonObject:
        out: JsonObject = {
            "keyslots": {str(i): k.to_dict() for i, k in self.keyslots.items()},
            "tokens": {str(i): t.to_dict() for i, t in self.tokens.items()},
            "segments": {str(i): s.to_dict() for i, s in self.segments.items()},
            "digests": {str(i): d.to_dict() for i, d in self.digests.items()},
            "config": self.config.to_dict(),
        }
        out.update(self.extra)
        return out

    def to_json(self) -> bytes:
        """Compact JSON exactly as cryptsetup writes it (no whitespace, raw UTF-8, ``/`` unescaped)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


#: Deepest JSON nesting read from a header. cryptsetup's json-c parser stops at 32 levels, so no header it
#: wrote comes near this; a deeper one (a crafted token) would make Python's recursive JSON parser raise
#: RecursionError, which escaped every luks command and `volumed run` as a traceback.
MAX_JSON_DEPTH: Final = 64
_JSON_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET: Final = re.compile(rb"[^\[\]{}]+")
_INNERMOST_PAIR: Final = re.compile(rb"[\[{][\]}]")


def json_too_deep(text: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``text`` nests arrays/objects deeper than ``limit``: strings are dropped, then the innermost
    bracket pairs are removed once per level (at most ``limit`` linear passes in C, no recursion).
    Malformed bracketing is not "too deep": the JSON parser reports it."""
    brackets = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", text))
    for _ in range(limit):
        brackets, removed = _INNERMOST_PAIR.subn(b"", brackets)
        if not brackets or not removed:
            return False
    return bool(_INNERMOST_PAIR.search(brackets))
