"""Helpers the new strategies share (a leading underscore keeps this out of discovery)."""

from __future__ import annotations

import numpy as np

from experiments.workload import Job, Phases, list_images


def read_all(job: Job, phases: Phases) -> list[np.ndarray]:
    """List the input folder and read every image once in the main thread (`read` spans)."""
    return [phases.read_in_main(path) for path in list_images(job.input_dir)]
