"""Helpers the new strategies share (a leading underscore keeps this out of discovery)."""

from __future__ import annotations

import numpy as np

from experiments.workload import Job, Phases, list_images, read_rgb, timed


def read_all(job: Job, phases: Phases) -> list[np.ndarray]:
    """List the input folder and read every image once, adding the time to phases.read."""
    images = []
    for path in list_images(job.input_dir):
        image, read = timed(read_rgb, path)
        images.append(image)
        phases.read += read
    return images
