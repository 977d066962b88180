"""The bounds of machine-config validation, so that no config can stall or exhaust the process reading it.

PyYAML's pure-Python parser costs about 0.1 ms per node and cel-python about 10 us per evaluation step, so
without bounds a 1 MiB list took over a minute and selectors with nested macros hours. The limits are far
above what a Talos machine config needs (a few hundred nodes, selectors of one line) and each one is named in
the error a config past it gets. docs/configuration.md lists them.
"""

from __future__ import annotations

from typing import Final

# The whole config file (all documents), in bytes.
MAX_CONFIG_BYTES: Final = 1024 * 1024
# Documents in the file, of every kind (including those volumed ignores).
MAX_DOCUMENTS: Final = 1024
# YAML nodes in the file as written (scalars, sequences, mappings; an alias counts once).
MAX_YAML_NODES: Final = 20_000
# Nodes in the file once aliases are expanded (an alias counts each time it is used): bounds "billion laughs".
# Also the pairs merge keys (`<<`) bring in, counted each time a mapping is merged (as they are flattened).
MAX_EXPANDED_NODES: Final = 100_000
# Sequences and mappings nested in one another.
MAX_YAML_DEPTH: Final = 64

# A disk selector's text, in characters.
MAX_SELECTOR_LENGTH: Final = 1024
# Levels of macros (all, exists, exists_one, map, filter) in the expression of one another: with lists of n
# items, k levels cost n ** k steps. Two allow
# `disk.symlinks.exists(s, ["a", "b"].exists(p, s.startsWith(p)))`.
MAX_SELECTOR_MACRO_DEPTH: Final = 2
# Depth of a selector's syntax tree (about ten levels per parenthesis or operator; a one-line selector has 20
# to 40): evaluation recurses about five frames per level, within Python's default recursion limit.
MAX_SELECTOR_TREE_DEPTH: Final = 100
# Evaluation steps (syntax tree nodes visited) of one evaluation of a selector for one disk.
MAX_SELECTOR_STEPS: Final = 10_000
# Character comparisons of a function (glob) counted as one evaluation step: a step costs about as much.
WORK_PER_STEP: Final = 64
# All the selectors of one config together (validation compiles each and evaluates it twice): parsing costs
# about 70 us per character and evaluation about 20 us per step, so a config stays within a few seconds.
MAX_CONFIG_SELECTOR_CHARACTERS: Final = 16 * 1024
MAX_CONFIG_SELECTOR_STEPS: Final = 100_000
