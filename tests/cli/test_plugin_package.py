"""A plugin shipped as a package of its own (pyproject.toml with a ``volumed.controllers`` entry point),
installed with ``pip install --target`` as an image builder would into the image, is loaded by a plain
`volumed run --once` (no option) and its resource is served by `volumed get` of a running node."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from volumed.storage import disklayout

VOLUMED = str(Path(sys.executable).parent / "volumed")
MIB = 1024 * 1024

PYPROJECT = textwrap.dedent(
    """
    [build-system]
    requires = ["setuptools>=61"]
    build-backend = "setuptools.build_meta"

    [project]
    name = "acme-volumes"
    version = "0.1"

    [project.entry-points."volumed.controllers"]
    acme = "acme_volumes:plugin"
    """
)

MODULE = textwrap.dedent(
    '''
    """The smallest useful plugin: says hello once the subsystem runs."""
    from volumed.controllers import Plugin
    from volumed.runtime import ResourceDefinition, Spec
    from volumed.runtime.controller import Controller, Output

    class HelloSpec(Spec):
        text: str

    HELLO = ResourceDefinition(
        type="Hellos.acme.example.com", spec_model=HelloSpec, default_namespace="acme", aliases=("hello",)
    )

    class Hello(Controller):
        name = "acme.Hello"
        outputs = (Output(HELLO.type, namespace="acme"),)

        async def reconcile(self, ctx):
            await ctx.apply(HELLO.new("hello", HelloSpec(text="hello from the acme package")))

    def plugin(options):
        return Plugin("acme", (Hello(),), (HELLO,))
    '''
)


def install(tmp_path: Path) -> Path:
    """Build and install the package with pip into a target directory (offline: no build isolation)."""
    source = tmp_path / "acme"
    (source / "acme_volumes").mkdir(parents=True)
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "acme_volumes" / "__init__.py").write_text(MODULE)
    target = tmp_path / "target"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert list(target.glob("acme_volumes-0.1.dist-info/entry_points.txt"))
    return target


def test_an_installed_plugin_package_is_loaded_and_served(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(install(tmp_path))}
    disk = tmp_path / "node.img"
    disklayout.create_disk_image(disk, 256 * MIB, state_size=16 * MIB)
    config = tmp_path / "config.yaml"
    config.write_text("apiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\n")
    argv = [VOLUMED, "run", "--config", str(config), "--disk", str(disk), "--backend", "fuse",
            "--root", str(tmp_path / "root"), "--state-dir", str(tmp_path / "state")]  # fmt: skip
    once = subprocess.run(
        [*argv, "--once", "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert once.returncode == 0, once.stdout + once.stderr
    daemon = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        socket = str(tmp_path / "state" / "api.sock")
        deadline, shown = time.monotonic() + 30, ""
        while "hello from the acme package" not in shown and time.monotonic() < deadline:
            time.sleep(0.2)
            shown = subprocess.run(
                [VOLUMED, "get", "hello", "-o", "yaml", "--socket", socket],
                capture_output=True, text=True, timeout=30, check=False,
            ).stdout  # fmt: skip
        assert "hello from the acme package" in shown
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, out
