"""How it is measured: config -> plan -> runner (one child per cell) -> store -> analysis -> report."""

import os

# albumentations checks PyPI for a newer version on import unless told not to; every process
# we start inherits this, so none of them waits on the network.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# One BLAS/OpenMP thread per process unless the user exports otherwise: W workers each running
# their own BLAS pool would oversubscribe the cores behind the measurement's back. Set here,
# before numpy loads, so this process and every child it starts inherit it.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

RESULT_FORMAT_VERSION = 1
