"""What is measured: the workload and one module per strategy.

Importing this package sets the process environment before numpy or OpenCV load, so this
process and every child it starts inherit it:
- NO_ALBUMENTATIONS_UPDATE=1: albumentations checks PyPI for a newer version on import otherwise;
- one BLAS/OpenMP thread per process unless the user exports otherwise: W workers each running
  their own BLAS pool would oversubscribe the cores behind the measurement's back;
- albumentations' optional torch glue (albumentations.pytorch, ToTensorV2) is not loaded:
  albumentations imports torch on import when torch is installed, seconds of start-up in every
  process, so every measurement would depend on whether the torch extra is installed. P_TORCH
  imports torch itself.
"""

import os
import sys

ENVIRONMENT = {
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
for _name, _value in ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)

# albumentations imports its torch glue inside `with suppress(ImportError)`: None makes that
# import fail at once, before torch loads.
sys.modules.setdefault("albumentations.pytorch", None)
