"""How it is measured: config -> plan -> runner (one child per cell) -> store -> analysis -> report."""

import os

# albumentations checks PyPI for a newer version on import unless told not to; every process
# we start inherits this, so none of them waits on the network.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

RESULT_FORMAT_VERSION = 1
