"""Maps the top-level folders onto the one import name `volumed` (see docs/architecture.md)."""

from setuptools import find_packages, setup

TOP_LEVEL = ["runtime", "resources", "config", "storage", "keys", "controllers", "cli"]

packages = ["volumed"]
package_dir = {"volumed": "volumed"}
for top in TOP_LEVEL:
    package_dir[f"volumed.{top}"] = top
    packages.append(f"volumed.{top}")
    packages += [f"volumed.{top}.{sub}" for sub in find_packages(top)]

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"": ["*.proto", "*.pyi", "py.typed"]},
)
