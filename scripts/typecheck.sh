#!/usr/bin/env bash
# mypy --strict on the package as installed (volumed.*): the top-level folders are mapped onto one import
# name by setup.py, which mypy cannot follow, so we lay a symlink tree that mirrors the installed layout.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .typecheck && mkdir -p .typecheck/volumed
cp volumed/*.py volumed/py.typed .typecheck/volumed/
for top in runtime resources config storage keys controllers cli; do
  ln -s "../../$top" ".typecheck/volumed/$top"
done
cd .typecheck && MYPYPATH=. ../.venv/bin/mypy --config-file ../pyproject.toml -p volumed
