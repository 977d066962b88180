"""Plugins in `volumed run` (``--controller MODULE:ATTR``, the ``volumed.controllers`` entry-point group) and
the embedding API (`volumed.node.run_async`): a plugin's controller runs beside the built-in ones and its
resource type is served by `volumed get` (a sensitive one refused); a plugin that fails to load or register is
an error at start naming it (exit 2) and nothing on the disk is written."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import anyio
import pytest

from volumed.storage import disklayout

VOLUMED = str(Path(sys.executable).parent / "volumed")
MIB = 1024 * 1024

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _doc_block(marker: str) -> str:
    """The python block between ``<!-- marker:start -->`` and ``<!-- marker:end -->`` of docs/plugins.md."""
    pattern = rf"<!-- {marker}:start -->\s*```python\n(?P<code>.*?)```\s*<!-- {marker}:end -->"
    match = re.search(pattern, DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert match, f"{DOC} lost its python block {marker}"
    return match.group("code")


# The plugin is the guide's example, and its failure examples in the same module (the guide says so).
PLUGIN = _doc_block("plugin-example") + "\n\n" + _doc_block("plugin-failures")


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    """A directory holding the plugin module and an installed distribution's entry point for it."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "example_plugin.py").write_text(PLUGIN)
    dist = root / "example_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: example-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[volumed.controllers]\nexample = example_plugin:plugin\n")
    return root


def environment(plugin_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(plugin_path)}


def image(tmp_path: Path) -> Path:
    path = tmp_path / "node.img"
    if not path.exists():
        disklayout.create_disk_image(path, 256 * MIB, state_size=16 * MIB)
    return path


def run_argv(tmp_path: Path, *extra: str, once: bool = True) -> list[str]:
    config = tmp_path / "config.yaml"
    config.write_text(
        "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\n"
    )  # the defaults (an empty file is refused)
    argv = [VOLUMED, "run", "--config", str(config), "--disk", str(image(tmp_path)), "--backend", "fuse"]
    argv += ["--root", str(tmp_path / "root"), "--state-dir", str(tmp_path / "state"), *extra]
    return [*argv, "--once", "--timeout", "1"] if once else argv


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def get(tmp_path: Path, kind: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    socket = str(tmp_path / "state" / "api.sock")
    return subprocess.run(
        [VOLUMED, "get", kind, "-o", "yaml", "--socket", socket],
        capture_output=True, text=True, timeout=30, check=False, env=env,
    )  # fmt: skip


@pytest.mark.parametrize("source", ["--controller", "entry point"])
def test_a_plugins_resources_are_served_and_its_secrets_refused(
    tmp_path: Path, plugin_path: Path, source: str
) -> None:
    env = environment(plugin_path)
    extra = ["--no-entry-points", "--controller", "example_plugin:plugin"] if source == "--controller" else []
    daemon = subprocess.Popen(
        run_argv(tmp_path, *extra, once=False),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        shown = get(tmp_path, "greeting", env)
        while "state in state" not in shown.stdout and time.monotonic() < deadline:
            time.sleep(0.2)
            shown = get(tmp_path, "greeting", env)
        assert "state in state" in shown.stdout, shown.stdout + shown.stderr
        assert "Greetings.app.example.com" in shown.stdout
        # It read volumed's own resources: EPHEMERAL's VolumeStatus (ready) and its MountStatus.
        data = f"app data under {tmp_path / 'root' / 'var'}"
        while data not in shown.stdout and time.monotonic() < deadline:
            time.sleep(0.2)
            shown = get(tmp_path, "greeting", env)
        assert data in shown.stdout, shown.stdout + shown.stderr
        secret = get(tmp_path, "Tokens.app.example.com", env)
        assert secret.returncode == 1
        assert "sensitive" in secret.stderr
        assert "s3cr3t" not in secret.stdout + secret.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, out
    assert "s3cr3t" not in out


def test_without_entry_points_the_installed_plugin_is_not_loaded(tmp_path: Path, plugin_path: Path) -> None:
    result = subprocess.run(
        run_argv(tmp_path, "--no-entry-points", "--controller", "example_plugin:raising"),
        capture_output=True, text=True, timeout=60, check=False, env=environment(plugin_path),
    )  # fmt: skip
    assert "example_plugin:raising" in result.stderr  # only the named one was loaded (and it fails)
    assert "entry point" not in result.stderr


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module:plugin", "plugin 'no_such_module:plugin': importing no_such_module failed: "
         "ModuleNotFoundError: No module named 'no_such_module'"),
        ("example_plugin:missing", "plugin 'example_plugin:missing': example_plugin has no attribute "
         "'missing'"),
        ("example_plugin", "plugin 'example_plugin': expected MODULE:ATTRIBUTE"),
        ("example_plugin:raising", "plugin 'example_plugin:raising': calling it failed: RuntimeError: the "
         "plugin's own failure"),
        ("example_plugin:Clash", "plugin 'example_plugin:Clash': a controller named 'KeyResolver' is "
         "already registered"),
        ("example_plugin:Undescribed", "plugin 'example_plugin:Undescribed': controller "
         "'example.Undescribed' publishes Unknowns.app.example.com, which no resource definition describes"),
        ("example_plugin:Shadow", "plugin 'example_plugin:Shadow': controller 'example.Shadow' publishes "
         "VolumeConfigs.block.volumed.dev, a type of volumed itself"),
        ("example_plugin:exiting", "plugin 'example_plugin:exiting': calling it failed: SystemExit: 0"),
    ],
)  # fmt: skip
def test_a_broken_plugin_is_named_at_start_and_nothing_is_written(
    tmp_path: Path, plugin_path: Path, spec: str, message: str
) -> None:
    disk = image(tmp_path)
    before = digest(disk)
    result = subprocess.run(
        run_argv(tmp_path, "--no-entry-points", "--controller", spec),
        capture_output=True, text=True, timeout=60, check=False, env=environment(plugin_path),
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: {message}"), result.stderr
    assert "Traceback" not in result.stderr
    assert digest(disk) == before


def test_a_broken_installed_plugin_names_its_entry_point(tmp_path: Path, plugin_path: Path) -> None:
    entry_points = plugin_path / "example_plugin-1.0.dist-info" / "entry_points.txt"
    entry_points.write_text("[volumed.controllers]\nbroken = example_plugin:raising\n")
    result = subprocess.run(
        run_argv(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment(plugin_path),
    )
    assert result.returncode == 2, result.stderr
    assert (
        "Error: plugin 'broken (example_plugin:raising, entry point of example-plugin)': calling it failed: "
        "RuntimeError: the plugin's own failure"
    ) in result.stderr


async def test_the_embedding_api_runs_a_plugin_in_process(tmp_path: Path, plugin_path: Path) -> None:
    sys.path.insert(0, str(plugin_path))
    try:
        import example_plugin  # type: ignore[import-not-found]

        from volumed.controllers import SubsystemOptions
        from volumed.node import NodeError, run_async

        options = SubsystemOptions(
            config=tmp_path / "config.yaml",
            disks=(str(image(tmp_path)),),
            backend="fuse",
            root=tmp_path / "root",
            state_dir=tmp_path / "state",
        )
        (tmp_path / "config.yaml").write_text("apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\n")
        plugin = example_plugin.plugin(options)
        code = await run_async(options, plugins=[plugin], entry_points=False, once=True, settle_timeout=60)
        assert code == 0  # STATE and EPHEMERAL provisioned and mounted, as `volumed run --once`
        assert plugin.controllers[0].ran
        with pytest.raises(NodeError, match="plugin 'example_plugin:raising': calling it failed") as caught:
            await run_async(options, plugins=["example_plugin:raising"], entry_points=False, once=True)
        assert caught.value.exit_code == 2
    finally:
        sys.path.remove(str(plugin_path))
        sys.modules.pop("example_plugin", None)


def _options(tmp_path: Path, **changes: object) -> object:
    import dataclasses

    from volumed.controllers import SubsystemOptions

    (tmp_path / "config.yaml").write_text("apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\n")
    options = SubsystemOptions(
        config=tmp_path / "config.yaml",
        disks=(str(image(tmp_path)),),
        backend="fuse",
        root=tmp_path / "root",
        state_dir=tmp_path / "state",
    )
    return dataclasses.replace(options, **changes)


async def test_the_embedding_api_refuses_a_malformed_tcti_before_anything_is_written(tmp_path: Path) -> None:
    from volumed.node import NodeError, run_async

    options = _options(tmp_path, tcti="/dev/tpmrm0")  # a path where a TCTI string is meant
    before = digest(image(tmp_path))
    with pytest.raises(NodeError) as caught:
        await run_async(options, entry_points=False, once=True, settle_timeout=30)  # type: ignore[arg-type]
    assert caught.value.exit_code == 2
    assert str(caught.value) == (
        "tcti: '/dev/tpmrm0' is not a TCTI string like 'device:/dev/tpmrm0'; nothing was written"
    )
    assert digest(image(tmp_path)) == before
    assert not (tmp_path / "state").exists()


def test_the_embedding_api_runs_outside_the_main_thread(tmp_path: Path) -> None:
    """Signals reach only the main thread: from another one the subsystem runs without a signal handler (the
    embedder stops it by cancelling) instead of failing after it started."""
    import threading

    from volumed.node import run

    options = _options(tmp_path)
    outcome: list[object] = []

    def body() -> None:
        try:
            outcome.append(run(options, entry_points=False, once=True, settle_timeout=60))  # type: ignore[arg-type]
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(timeout=120)
    assert outcome == [0]

    var = tmp_path / "root" / "var"

    async def cancelled_once_mounted() -> None:
        from volumed.node import run_async

        async with anyio.create_task_group() as group:
            group.start_soon(partial(run_async, options, entry_points=False))  # type: ignore[arg-type]
            # ASYNC110: the mount is seen from outside the subsystem, there is no event to wait on
            while not await anyio.to_thread.run_sync(os.path.ismount, var):  # noqa: ASYNC110
                await anyio.sleep(0.05)
            group.cancel_scope.cancel()

    thread = threading.Thread(target=lambda: outcome.append(anyio.run(cancelled_once_mounted)))
    thread.start()
    thread.join(timeout=120)
    assert outcome == [0, None]
    assert not os.path.ismount(var)  # the cancel unmounted and closed the volumes
