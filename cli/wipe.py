"""`volumed wipe DEVICE --system-labels-to-wipe LABEL...`: erase the signatures of system partitions."""

from __future__ import annotations

import os
import sys

import click

# Exit codes follow cryptsetup's: 1 bad arguments or declined, 4 wrong device, 5 busy.
EXIT_BAD_ARGUMENTS = 1
EXIT_WRONG_DEVICE = 4
EXIT_BUSY = 5


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(code)


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


@click.command()
@click.argument("device", type=click.Path(dir_okay=False))
@click.option(
    "--system-labels-to-wipe",
    "labels",
    multiple=True,
    required=True,
    metavar="LABEL",
    help="Partition label to wipe (repeat, or give several after the option), e.g. STATE EPHEMERAL.",
)
@click.option("-y", "--yes", "--batch-mode", "yes", is_flag=True, help="Do not ask for confirmation.")
@click.argument("more_labels", nargs=-1, metavar="[LABEL]...")
def wipe(device: str, labels: tuple[str, ...], yes: bool, more_labels: tuple[str, ...]) -> None:
    """Wipe the signatures of DEVICE's partitions with the given labels, as Talos' reset does.

    DEVICE is a disk image or block device with a GPT. For each partition named by a label, every
    signature found (LUKS, filesystems, LVM, ...) is erased and its first and last MiB are zeroed; the
    partition table and other partitions stay as they are. On a terminal it asks first, unless --yes.
    Exit status: 0 done, 1 bad arguments or declined, 4 not a disk with a valid GPT (overlapping
    partitions or a label twice: nothing is wiped), 5 a partition is in use.
    """
    from volumed.storage import disklayout
    from volumed.storage.blockdev import BlockDeviceError, format_size
    from volumed.storage.gpt import GPTError

    wanted = list(dict.fromkeys((*labels, *more_labels)))
    if not os.path.exists(device):
        _fail(f"{device} does not exist", EXIT_WRONG_DEVICE)
    try:
        # An invalid table (overlapping partitions, a label twice) is refused: which bytes are STATE is not
        # known, and zeroing a partition's first and last MiB could hit another one. Repair it with gdisk.
        table = disklayout.read_volume_table(device)
    except (GPTError, BlockDeviceError, OSError) as exc:
        _fail(f"{device}: {exc}" if device not in str(exc) else str(exc), EXIT_WRONG_DEVICE)
        return
    unknown = [label for label in wanted if table.find(label) is None]
    if unknown:
        present = ", ".join(p.name for p in table.partitions) or "none"
        _fail(f"{device} has no partition labelled {', '.join(unknown)} (labels present: {present})", 1)
    if not yes and _stdin_is_terminal():
        question = f"Wipe {', '.join(wanted)} on {device}? Their data will be lost."
        if not click.confirm(question, default=False):
            _fail("aborted, nothing was wiped", EXIT_BAD_ARGUMENTS)
    try:
        wiped = disklayout.wipe_system_partitions(device, wanted)
    except disklayout.DeviceBusyError as exc:
        _fail(str(exc), EXIT_BUSY)
        return
    except disklayout.UnknownLabelError as exc:
        _fail(str(exc), EXIT_BAD_ARGUMENTS)
        return
    except (disklayout.DiskLayoutError, GPTError, BlockDeviceError, OSError) as exc:
        _fail(str(exc), EXIT_WRONG_DEVICE)
        return
    for w in wiped:
        found = ", ".join(s.type.value for s in w.signatures) or "no signature"
        click.echo(f"wiped {w.label} (partition {w.number}, {format_size(w.size)}): {found}")
