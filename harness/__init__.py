"""How it is measured: config -> plan -> runner (one child per cell) -> store -> analysis -> report.

See docs/ARCHITECTURE.md for every module's job and the layer rules.
"""

import experiments  # noqa: F401  (sets the process environment before numpy loads)
