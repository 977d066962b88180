"""`volumed luks dump DEVICE [--json]`: show the header (cryptsetup luksDump)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ._common import device_options, luks_errors, open_volume, out

if TYPE_CHECKING:
    from volumed.storage.luks2 import Luks2Volume


def _hex_lines(data: bytes, indent: str) -> list[str]:
    lines = []
    for i in range(0, len(data), 16):
        lines.append(" ".join(f"{b:02x}" for b in data[i : i + 16]) + " ")
    return [lines[0], *(indent + line for line in lines[1:])] if lines else [""]


_PRIORITY = {None: "normal", 0: "ignored", 1: "normal", 2: "preferred"}


def render(volume: Luks2Volume) -> str:
    """The header as text, laid out like cryptsetup 2.6's luksDump."""
    from volumed.storage.luks2.lowlevel import Argon2Kdf, Keyslot

    meta = volume.metadata
    flags = " ".join(meta.config.flags or ()) or "(no flags)"
    lines = [
        "LUKS header information",
        "Version:       \t2",
        f"Epoch:         \t{volume.seqid}",
        f"Metadata area: \t{meta.config.json_size + 4096} [bytes]",
        f"Keyslots area: \t{meta.config.keyslots_size} [bytes]",
        f"UUID:          \t{volume.uuid}",
        f"Label:         \t{volume.label or '(no label)'}",
        f"Subsystem:     \t{volume.subsystem or '(no subsystem)'}",
        f"Flags:       \t{flags}",
    ]
    if meta.config.mandatory_requirements:
        lines.append("Requirements:\t" + "".join(f"{r} " for r in meta.config.mandatory_requirements))
    lines += ["", "Data segments:"]
    for i, seg in meta.segments.items():
        lines.append(f"  {i}: {seg.type}")
        lines.append(f"\toffset: {seg.offset} [bytes]")
        lines.append("\tlength: (whole device)" if seg.size is None else f"\tlength: {seg.size} [bytes]")
        if seg.type == "crypt":
            lines.append(f"\tcipher: {seg.encryption}")
            lines.append(f"\tsector: {seg.sector_size} [bytes]")
        seg_flags = seg.extra.get("flags")
        if isinstance(seg_flags, list) and seg_flags:
            lines.append(f"\tflags : {' '.join(map(str, seg_flags))}")
        lines.append("")
    lines.append("Keyslots:")
    default_segment = next((s for s, seg in meta.segments.items() if not seg.is_backup), None)
    for i, slot in meta.keyslots.items():
        bound = any(i in d.keyslots and default_segment in d.segments for d in meta.digests.values())
        lines.append(f"  {i}: {slot.type}{'' if bound else ' (unbound)'}")
        if not isinstance(slot, Keyslot):
            continue
        lines += [
            f"\tKey:        {slot.key_size * 8} bits",
            f"\tPriority:   {_PRIORITY.get(slot.priority, str(slot.priority))}",
            f"\tCipher:     {slot.area_encryption}",
            f"\tCipher key: {slot.area_key_size * 8} bits",
            f"\tPBKDF:      {slot.kdf.type}",
        ]
        if isinstance(slot.kdf, Argon2Kdf):
            lines += [
                f"\tTime cost:  {slot.kdf.time}",
                f"\tMemory:     {slot.kdf.memory}",
                f"\tThreads:    {slot.kdf.cpus}",
            ]
        else:
            lines += [f"\tHash:       {slot.kdf.hash}", f"\tIterations: {slot.kdf.iterations}"]
        salt = _hex_lines(slot.kdf.salt, "\t            ")
        lines.append(f"\tSalt:       {salt[0]}")
        lines += salt[1:]
        digest_ids = [d for d, digest in meta.digests.items() if i in digest.keyslots]
        lines += [
            f"\tAF stripes: {slot.af_stripes}",
            f"\tAF hash:    {slot.af_hash}",
            f"\tArea offset:{slot.area_offset} [bytes]",
            f"\tArea length:{slot.area_size} [bytes]",
            f"\tDigest ID:  {digest_ids[0] if digest_ids else '-'}",
        ]
    lines.append("Tokens:")
    for i, tok in meta.tokens.items():
        lines.append(f"  {i}: {tok.type}")
        lines += [f"\tKeyslot:    {k}" for k in tok.keyslots]
    lines.append("Digests:")
    for i, digest in meta.digests.items():
        lines += [
            f"  {i}: {digest.type}",
            f"\tHash:       {digest.hash}",
            f"\tIterations: {digest.iterations}",
        ]
        salt = _hex_lines(digest.salt, "\t            ")
        lines.append(f"\tSalt:       {salt[0]}")
        lines += salt[1:]
        value = _hex_lines(digest.digest, "\t            ")
        lines.append(f"\tDigest:     {value[0]}")
        lines += value[1:]
    return "\n".join(lines)


@click.command("dump")
@click.argument("device", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the JSON metadata exactly as stored on disk.")
@device_options
def dump(device: str, as_json: bool, **options: Any) -> None:
    """Show DEVICE's LUKS2 header. Only reads: a bad or stale header copy is reported on stderr and the
    valid one shown (`volumed luks repair` rewrites it)."""
    with luks_errors(device), open_volume(device, options, read_only=True) as volume:
        for problem in volume.header_problems:
            click.echo(f"WARNING: {problem}; showing the other copy (see `volumed luks repair`).", err=True)
        out(volume.json_text if as_json else render(volume))
