"""Encrypt-if-empty, open and key-slot sync of one LUKS2 volume: Talos' semantics, fewer KDF runs.

Plain async functions over `volumed.storage.luks2` and `volumed.keys` (no runtime), called by the
VolumeFormatter and KeySlotSyncer controllers. Every LUKS2 operation blocks (header I/O, KDF) and runs in a
worker thread.

KDF budget per boot: opening runs the KDF of the slot that opens; every other configured slot is checked
against its fingerprint (`volumed.storage.slotcheck`) without a KDF. Only a slot without a valid fingerprint
(enrolled by cryptsetup or Talos, or changed behind our back) costs one KDF run, once: its fingerprint is
stored afterwards.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
import structlog
from anyio.lowlevel import RunVar

from volumed.keys import GateClosedError, InvalidTokenError, KeyProviderError
from volumed.storage.luks2 import KeyslotNotActiveError, Luks2Error, NoKeyError
from volumed.storage.luks2.faults import crash_scope
from volumed.storage.slotcheck import (
    SLOT_CHECK_TOKEN_TYPE,
    SlotCheckError,
    fingerprint_matches,
    make_slot_check_token,
    parse_slot_check_token,
    slot_fingerprint,
)

from ._kdf_turns import KdfTurns

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from volumed.keys import KeyProvider, Passphrase
    from volumed.resources import EncryptionConfigSpec, PbkdfSpec
    from volumed.storage.luks2 import KdfLoad, KdfSettings, Luks2Volume, Token, VolumeKey

log = structlog.get_logger(__name__)
T = TypeVar("T")

MKFS_PENDING_TOKEN_TYPE = "volumed-mkfs-pending"
TOKEN_KINDS = frozenset({"kms", "tpm"})
"""Key kinds whose slot has a token, at token id = slot (Talos' rule)."""


@dataclass(frozen=True)
class SlotKey:
    """A configured key slot: its provider, or why none can be made now (no secret in ``reason``)."""

    slot: int
    kind: str
    provider: KeyProvider | None
    reason: str = ""


@dataclass(frozen=True)
class Location:
    """Where the LUKS2 volume lives: a device or image file and the byte range inside it."""

    path: str
    offset: int = 0
    size: int | None = None


@dataclass
class OpenedVolume:
    """The outcome of opening: the volume key, the slot that opened and the KDF runs it cost.

    ``passphrase`` is the one that opened, kept so the key-slot sync can fingerprint that slot too.
    """

    volume_key: VolumeKey
    slot: int
    kind: str
    kdf_runs: int = 1
    failed_syncs: list[str] = field(default_factory=list)
    passphrase: Passphrase | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"OpenedVolume(slot={self.slot}, kind={self.kind!r}, kdf_runs={self.kdf_runs})"


class NoUsableKeyError(Exception):
    """No configured key could open (or format) the volume; the message lists why, slot by slot."""


_kdf_turns: RunVar[KdfTurns] = RunVar("volumed_kdf_turns")


_step_scope: ContextVar[anyio.CancelScope | None] = ContextVar("volumed_step_scope", default=None)


@contextmanager
def step_time_limit(seconds: float) -> Iterator[anyio.CancelScope]:
    """``anyio.fail_after(seconds)`` for one encryption step, not counting the time its KDF runs wait for a
    turn (`_run_kdf`): with ten volumes on two CPUs the last ones queue for minutes, and a limit that counted
    the queue failed them (and ran their KDFs again on the retry)."""
    with anyio.fail_after(seconds) as scope:
        token = _step_scope.set(scope)
        try:
            yield scope
        finally:
            _step_scope.reset(token)


def _turns() -> KdfTurns:
    try:
        return _kdf_turns.get()
    except LookupError:
        turns = KdfTurns.for_this_machine()
        _kdf_turns.set(turns)
        return turns


async def _run_kdf(fn: Callable[[], T], load: KdfLoad) -> T:
    """Run a call that runs a KDF of this ``load`` in a worker thread, once it has a turn (`KdfTurns`:
    as many at once as the CPUs and memory hold). One set of turns per event loop. The wait for a turn is
    not counted by the enclosing `step_time_limit`.
    """
    turns = _turns()
    scope = _step_scope.get()
    remaining = None if scope is None else scope.deadline - anyio.current_time()
    if scope is not None:
        scope.deadline = math.inf  # the queue does not count (other cancellations still reach the wait)
    try:
        turn = await turns.acquire(load)
    finally:
        if scope is not None and remaining is not None:
            scope.deadline = anyio.current_time() + remaining
    try:
        return await anyio.to_thread.run_sync(fn)
    finally:
        turns.release(turn)


async def _unlock_slot(volume: Luks2Volume, passphrase: bytes, slot: int) -> VolumeKey:
    """Unlock key slot ``slot`` (in the header) with ``passphrase``, its KDF taking a turn by its own load."""
    from volumed.storage.luks2 import kdf_load

    load = kdf_load(volume.keyslots[slot].kdf)
    return await _run_kdf(partial(volume.unlock, passphrase, keyslot=slot), load)


def kdf_settings(pbkdf: PbkdfSpec | None) -> KdfSettings:
    """The key-slot KDF: the config's ``pbkdf`` block (volumed extension) or cryptsetup's benchmark."""
    from volumed.storage.luks2 import KdfSettings

    if pbkdf is None:
        return KdfSettings()
    return KdfSettings(
        type=pbkdf.type, iterations=pbkdf.iterations, memory_kib=pbkdf.memory_kib, parallel=pbkdf.parallel
    )


def activation_flags(encryption: EncryptionConfigSpec) -> tuple[str, ...]:
    """The dm-crypt flags a volume is activated with: its perf ``options`` and ``allow_discards``, as
    cryptsetup's ``--perf-*`` and ``--allow-discards`` put them in the table."""
    return (*encryption.perf_options, *(("allow_discards",) if encryption.allow_discards else ()))


# The LUKS2 header, KDF and key-slot code (`Luks2Volume`) is imported on first use, in the worker thread that
# opens or formats: it is about 4 % of `import volumed.controllers`, which a node without encrypted volumes
# would pay for nothing.


def _open(location: Location, *, read_only: bool = False) -> Luks2Volume:
    from volumed.storage.luks2 import Luks2Volume

    return Luks2Volume.open(location.path, offset=location.offset, size=location.size, read_only=read_only)


def _format(path: str, passphrase: bytes, *, kdf: KdfSettings, **options: Any) -> Luks2Volume:
    from volumed.storage.luks2 import Luks2Volume

    return Luks2Volume.format(path, passphrase, kdf=kdf, **options)


async def _open_volume(location: Location) -> Luks2Volume:
    return await anyio.to_thread.run_sync(_open, location)


def _token_body(volume: Luks2Volume, token_id: int) -> dict[str, Any] | None:
    token = volume.tokens.get(token_id)
    return dict(token.to_dict()) if token is not None else None


async def format_encrypted(
    location: Location, encryption: EncryptionConfigSpec, keys: Sequence[SlotKey]
) -> OpenedVolume:
    """Format an empty region as LUKS2 with the first key that can be made, then add the others.

    The caller has checked that the region carries no signature: this destroys whatever is there.
    """
    settings = await anyio.to_thread.run_sync(kdf_settings, encryption.pbkdf)  # imports the KDF code
    reasons: list[str] = []
    for key in keys:
        if key.provider is None:
            reasons.append(f"slot {key.slot} ({key.kind}): {key.reason}")
            continue
        try:
            new = await key.provider.new_key()
        except KeyProviderError as error:
            reasons.append(f"slot {key.slot} ({key.kind}): {error}")
            continue
        material = os.urandom(encryption.key_size_bits // 8)
        format_it = partial(
            _format,
            location.path,
            new.passphrase.reveal(),
            offset=location.offset,
            size=location.size,
            volume_key=material,
            cipher=encryption.cipher,
            key_size=encryption.key_size_bits // 8,
            sector_size=encryption.block_size or None,
            kdf=settings,
            keyslot=key.slot,
            # The mkfs-pending mark is in the header's first valid state: a volume volumed formatted is
            # never seen without it before its filesystem is made (the formatter mkfs's only a marked one).
            tokens={_mkfs_mark_id(keys): {"type": MKFS_PENDING_TOKEN_TYPE, "keyslots": []}},
        )
        log.info("formatting and encrypting volume", device=location.path, slot=key.slot, kind=key.kind)
        volume = await _run_kdf(format_it, settings.load())
        try:
            if new.token is not None:
                await anyio.to_thread.run_sync(
                    partial(volume.import_token, new.token, token_id=key.slot, replace_existing=True)
                )
            from volumed.storage.luks2 import VolumeKey  # imported by _format

            opened = OpenedVolume(
                VolumeKey(material, key.slot), key.slot, key.kind, kdf_runs=0, passphrase=new.passphrase
            )
            opened.failed_syncs = await _sync(
                volume, opened, new.passphrase, keys, encryption, opened_by_these_keys=True
            )
        finally:
            volume.close()
        return opened
    raise NoUsableKeyError("no key can be made to encrypt the volume: " + "; ".join(reasons))


async def open_encrypted(
    location: Location, encryption: EncryptionConfigSpec, keys: Sequence[SlotKey], *, sync: bool = True
) -> OpenedVolume:
    """Open with the configured keys in slot order (first success wins), then sync the key slots.

    Raises:
        NoUsableKeyError: no key opened the volume; the message says why for each slot.
    """
    volume = await _open_volume(location)
    try:
        reasons: list[str] = []
        for key in keys:
            if key.provider is None:
                reasons.append(f"slot {key.slot} ({key.kind}): {key.reason}")
                continue
            if key.slot not in volume.keyslots:
                reasons.append(f"slot {key.slot} ({key.kind}): key slot is not in the header")
                continue
            try:
                passphrase = await key.provider.get_key(_token_body(volume, key.slot))
            except KeyProviderError as error:
                reasons.append(f"slot {key.slot} ({key.kind}): {error}")
                continue
            try:
                volume_key = await _unlock_slot(volume, passphrase.reveal(), key.slot)
            except KeyslotNotActiveError as error:  # the slot cannot be used at all: why is no secret
                reasons.append(f"slot {key.slot} ({key.kind}): {error}")
                continue
            except NoKeyError:  # the passphrase opened nothing: one message, as cryptsetup's
                reasons.append(f"slot {key.slot} ({key.kind}): No usable keyslot is available.")
                continue
            opened = OpenedVolume(volume_key, key.slot, key.kind, passphrase=passphrase)
            if sync:
                opened.failed_syncs = await _sync(
                    volume, opened, passphrase, keys, encryption, opened_by_these_keys=True
                )
            return opened
        raise NoUsableKeyError("failed to open the volume: " + "; ".join(reasons or ["no keys configured"]))
    finally:
        volume.close()


async def sync_key_slots(
    location: Location, encryption: EncryptionConfigSpec, keys: Sequence[SlotKey], opened: OpenedVolume
) -> list[str]:
    """Bring the header's key slots in line with ``keys`` using the volume key we already hold.

    Run by the KeySlotSyncer after each open and whenever the configured keys change while the volume is
    open (no reboot needed, unlike Talos).
    """
    volume = await _open_volume(location)
    try:
        with crash_scope("key-slot-sync"):
            return await _sync(
                volume, opened, opened.passphrase, keys, encryption, opened_by_these_keys=False
            )
    finally:
        volume.close()


def _slot_failures(failures: Sequence[str], slot: int) -> list[str]:
    """The failures recorded for configured ``slot`` by an earlier sync."""
    return [
        f
        for f in failures
        if f.startswith((f"error updating key slot {slot} ", f"error adding key slot {slot} "))
    ]


def _token_matches(key: SlotKey, token: dict[str, Any] | None) -> bool:
    """Whether the slot's token fits the configured key (a TPM key: sealed with the configured PCR list).

    Providers that seal to something the config can change offer ``token_matches``; wrappers (time limit,
    lock to STATE) are looked through by their ``inner``.
    """
    provider: object = key.provider
    while hasattr(provider, "inner"):
        provider = provider.inner
    matches = getattr(provider, "token_matches", None)
    return True if matches is None else bool(matches(token))


def _peer_tokens(volume: Luks2Volume) -> dict[int, Token]:
    """Another tool's tokens on the same header (systemd-cryptenroll, clevis, cryptsetup's keyring token), by
    id: those bound to key slots by their own LUKS2 ``keyslots`` list. Talos' and volumed's tokens never are
    (their slot is in their UserData), so such a token, and the key slots it is bound to, are a peer's."""
    return {token_id: token for token_id, token in volume.tokens.items() if token.keyslots}


def _peer_slots(peers: dict[int, Token]) -> dict[int, tuple[int, Token]]:
    """The key slots bound to a peer's token: slot -> (token id, token); the lowest token id first."""
    bound: dict[int, tuple[int, Token]] = {}
    for token_id in sorted(peers, reverse=True):
        bound.update((slot, (token_id, peers[token_id])) for slot in peers[token_id].keyslots)
    return bound


def _peer_slot(slot: int, peer_slots: dict[int, tuple[int, Token]]) -> str:
    token_id, token = peer_slots[slot]
    return (
        f"key slot {slot} is bound to token {token_id} ({token.type}), another tool's: left alone (free it"
        " with that tool, or configure another slot)"
    )


def _peer_token(slot: int, peers: dict[int, Token]) -> str:
    token = peers[slot]
    bound = ", ".join(map(str, token.keyslots))
    return (
        f"token {slot} is another tool's ({token.type}, bound to key slot {bound}): left alone, key slot"
        f" {slot} is not changed (configure another slot)"
    )


def _fingerprints(volume: Luks2Volume) -> tuple[int | None, dict[int, bytes]]:
    for token_id, token in volume.tokens.items():
        if token.type == SLOT_CHECK_TOKEN_TYPE:
            try:
                return token_id, parse_slot_check_token(token.to_dict())
            except SlotCheckError as error:
                log.warning("ignoring malformed slot-check token", token=token_id, error=str(error))
                return token_id, {}
    return None, {}


def _fingerprint_token_id(volume: Luks2Volume, keys: Sequence[SlotKey], current: int | None) -> int | None:
    """Where the fingerprint token goes: where it is, else the highest id no key slot's token can claim."""
    if current is not None:
        return current
    claimed = {key.slot for key in keys} | set(volume.tokens)
    return next((i for i in range(31, -1, -1) if i not in claimed), None)


async def _holds_its_key(
    volume: Luks2Volume,
    key: SlotKey,
    token: dict[str, Any] | None,
    fps: dict[int, bytes],
    opened: OpenedVolume,
) -> bool:
    """Whether an existing slot opens with its configured key: by its fingerprint, else one test unlock.

    A token that is missing or not this kind's (the slot's kind changed, e.g. static to kms) means no.
    """
    assert key.provider is not None
    try:
        passphrase = await key.provider.get_key(token)
    except InvalidTokenError:
        return False
    volume_key = opened.volume_key.material
    fingerprint = slot_fingerprint(
        volume_key, key.slot, volume.keyslots[key.slot].to_dict(), passphrase.reveal()
    )
    if fingerprint_matches(fps.get(key.slot), fingerprint):
        return True
    opened.kdf_runs += 1
    try:
        await _unlock_slot(volume, passphrase.reveal(), key.slot)
    except KeyslotNotActiveError as error:  # e.g. its area in a cipher we do not implement: say so
        log.warning(
            "configured key slot is unusable here; enrolling it again",
            slot=key.slot,
            kind=key.kind,
            reason=str(error),
        )
        return False
    except NoKeyError:
        return False
    fps[key.slot] = fingerprint
    return True


async def _sync(
    volume: Luks2Volume,
    opened: OpenedVolume,
    opened_passphrase: Passphrase | None,
    keys: Sequence[SlotKey],
    encryption: EncryptionConfigSpec,
    *,
    opened_by_these_keys: bool,
) -> list[str]:
    """Talos' key-slot sync: skip the slot that opened, check or (re)add configured slots, kill the rest.

    The slot that opened is skipped only when ``keys`` are the keys it was opened with (right after an
    open). A later sync (the config changed while the volume is open) checks it like any other slot: its
    configured key may be a new one, which is then enrolled in its place.

    Better than Talos: a slot whose key cannot be made right now (KMS down, no TPM) is left alone rather than
    killed and lost; a slot's key is never killed then added: the new key (and its token) replace the old
    ones in one header commit (`Luks2Volume.enrol_key`), so no crash leaves the slot without a key; slots
    not in the config are removed only once a configured slot holds its key; checks use fingerprints
    instead of a KDF run per slot. Errors are collected, never raised: the volume is open either way.

    Unlike Talos, another tool's key slots on the same header (bound to its token, `_peer_tokens`: e.g.
    systemd-cryptenroll's) are a peer's: kept when not configured, never re-enrolled or killed when
    configured, and a peer's token is never replaced or removed; a configured slot that would need either
    is reported instead.
    """
    failed: list[str] = []
    volume_key = opened.volume_key.material
    settings = kdf_settings(encryption.pbkdf)
    token_id, old_fps = _fingerprints(volume)
    fps = dict(old_fps)
    peers = _peer_tokens(volume)
    peer_slots = _peer_slots(peers)

    def slot_json(slot: int) -> dict[str, Any]:
        return volume.keyslots[slot].to_dict()

    if opened_passphrase is not None and opened.slot in volume.keyslots:
        fps[opened.slot] = slot_fingerprint(
            volume_key, opened.slot, slot_json(opened.slot), opened_passphrase.reveal()
        )

    working: set[int] = set()  # configured slots known to hold their configured key now
    for key in keys:
        token = None if key.slot in peers else _token_body(volume, key.slot)  # a peer's token is not its
        token_fits = _token_matches(key, token)
        if key.slot == opened.slot and opened_by_these_keys and token_fits:
            working.add(key.slot)
            continue
        action = "updating" if key.slot in volume.keyslots else "adding"
        if key.slot in peers and key.kind in TOKEN_KINDS:  # its token would replace a peer's: said first,
            # whether or not its key can be made now (waiting for it changes nothing)
            failed.append(f"error {action} key slot {key.slot} {key.kind}: {_peer_token(key.slot, peers)}")
            continue
        if key.provider is None:
            failed.append(f"error {action} key slot {key.slot} {key.kind}: {key.reason}")
            continue
        try:
            if (
                key.slot in volume.keyslots
                and token_fits
                and await _holds_its_key(volume, key, token, fps, opened)
            ):
                working.add(key.slot)
                continue
            if key.slot in peer_slots:  # the slot is a peer's: never overwritten
                failed.append(
                    f"error {action} key slot {key.slot} {key.kind}: {_peer_slot(key.slot, peer_slots)}"
                )
                continue
            new = await key.provider.new_key()  # before any change: a key that cannot be made loses no slot
            tokens: dict[int, dict[str, Any] | None] = {}
            if new.token is not None and key.slot in peers:  # another kind with a token
                failed.append(
                    f"error {action} key slot {key.slot} {key.kind}: {_peer_token(key.slot, peers)}"
                )
                continue
            if key.slot in volume.keyslots:
                log.info(
                    "key slot does not match its config; enrolling it again"
                    if token_fits
                    else "key slot token does not match its config; sealing it again",
                    slot=key.slot,
                    kind=key.kind,
                )
            if new.token is not None:
                tokens[key.slot] = new.token
            elif (
                key.slot in volume.tokens
                and volume.tokens[key.slot].type != SLOT_CHECK_TOKEN_TYPE
                and key.slot not in peers
            ):
                tokens[key.slot] = None
            # Add-first: the new key and its token replace the old ones in one header commit, the old
            # material is wiped after it; a crash leaves the slot opening with the old or the new key.
            await _run_kdf(
                partial(
                    volume.enrol_key,
                    key.slot,
                    new.passphrase.reveal(),
                    volume_key=opened.volume_key,
                    kdf=settings,
                    tokens=tokens,
                ),
                settings.load(),
            )
            working.add(key.slot)
            log.info(
                f"key slot {'replaced' if action == 'updating' else 'enrolled'}", slot=key.slot, kind=key.kind
            )
            fps[key.slot] = slot_fingerprint(
                volume_key, key.slot, slot_json(key.slot), new.passphrase.reveal()
            )
            if key.slot == opened.slot:  # the slot that opened now holds the configured key
                opened.passphrase, opened.kind = new.passphrase, key.kind
        except GateClosedError as error:  # not asked: what the key's source said before still stands
            before = _slot_failures(opened.failed_syncs, key.slot)
            failed.extend(before or [f"error {action} key slot {key.slot} {key.kind}: {error}"])
        except (KeyProviderError, Luks2Error) as error:
            failed.append(f"error {action} key slot {key.slot} {key.kind}: {error}")

    configured = {key.slot for key in keys}
    for slot in sorted(set(volume.keyslots) - configured - set(peer_slots)):  # a peer's slots stay
        if not working:  # never remove the last key that opens the volume before a configured one works
            failed.append(f"keeping key slot {slot}: no configured key slot holds its key yet")
            continue
        try:
            await anyio.to_thread.run_sync(volume.kill_slot, slot)
            slot_token = volume.tokens.get(slot)
            log.info(
                "key slot removed", slot=slot, **({} if slot_token is None else {"token": slot_token.type})
            )
            if slot_token is not None and slot_token.type != SLOT_CHECK_TOKEN_TYPE and slot not in peers:
                await anyio.to_thread.run_sync(volume.remove_token, slot)
            fps.pop(slot, None)
        except Luks2Error as error:
            failed.append(f"error removing key slot {slot}: {error}")

    fps = {slot: fp for slot, fp in fps.items() if slot in volume.keyslots}
    if token_id is not None and getattr(volume.tokens.get(token_id), "type", None) != SLOT_CHECK_TOKEN_TYPE:
        token_id, old_fps = None, {}  # a key slot's token took its place: store the fingerprints elsewhere
    if fps != old_fps:
        target = _fingerprint_token_id(volume, keys, token_id)
        if target is not None:
            body = make_slot_check_token(fps)
            try:
                await anyio.to_thread.run_sync(
                    partial(volume.import_token, body, token_id=target, replace_existing=True)
                )
            except Luks2Error as error:
                log.warning("could not store key-slot fingerprints", error=str(error))
    return failed


def _mkfs_mark_id(keys: Sequence[SlotKey]) -> int:
    """The token id of the mkfs-pending mark in a new header: the highest no configured key slot's token can
    claim (a key's token goes to its slot's id, replacing what is there), below 31, which the first key-slot
    sync gives the fingerprint token (`_fingerprint_token_id`) while the mark is still there; the mark is
    short-lived, the fingerprints stay, at the id they always had."""
    claimed = {key.slot for key in keys}
    return next((i for i in range(30, -1, -1) if i not in claimed), 31)


def _set_mkfs_pending(location: Location, pending: bool) -> None:
    with _open(location) as volume:
        marks = [i for i, t in volume.tokens.items() if t.type == MKFS_PENDING_TOKEN_TYPE]
        if pending and not marks:
            free = [i for i in range(31, -1, -1) if i not in volume.tokens and i not in volume.keyslots]
            if free:
                volume.import_token({"type": MKFS_PENDING_TOKEN_TYPE, "keyslots": []}, token_id=free[0])
        elif not pending:
            for token_id in marks:
                volume.remove_token(token_id)


async def set_mkfs_pending(location: Location, pending: bool) -> None:
    """Mark in the LUKS2 header that mkfs of the opened volume has started (``pending``) or finished.

    Why: a power cut in the middle of mkfs leaves a filesystem signature on a filesystem that cannot be
    mounted; probing alone would keep it forever (STATE never mounts, volumes locked to STATE never get their
    salt). A mark still there at the next boot says the filesystem was never finished: make it again.
    """
    await anyio.to_thread.run_sync(_set_mkfs_pending, location, pending)


def _mkfs_pending(location: Location) -> bool:
    with _open(location, read_only=True) as volume:
        return any(t.type == MKFS_PENDING_TOKEN_TYPE for t in volume.tokens.values())


async def mkfs_pending(location: Location) -> bool:
    """Whether an earlier mkfs of this volume started and never finished (see `set_mkfs_pending`)."""
    return await anyio.to_thread.run_sync(_mkfs_pending, location)
