"""What is measured: the workload and one module per strategy.

Importing this package sets the process environment before numpy or OpenCV load, so this
process and every child it starts inherit it:
- NO_ALBUMENTATIONS_UPDATE=1: albumentations checks PyPI for a newer version on import otherwise;
- one BLAS/OpenMP thread per process unless the user exports otherwise: W workers each running
  their own BLAS pool would oversubscribe the cores behind the measurement's back.
"""

import os

ENVIRONMENT = {
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
for _name, _value in ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)
