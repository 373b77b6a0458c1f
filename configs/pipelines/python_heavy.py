"""A pipeline whose `Lambda` works in pure Python, holding the GIL: the case where threads
cannot scale and processes must (`configs/python_heavy.yaml`, docs/PROFILE.md). Deterministic:
the Lambda draws nothing, the other transforms draw from the Compose's seed."""

from __future__ import annotations

import albumentations as A
import numpy as np

STEP = 8  # every 8th value of a row: about a millisecond per 224x224 image here


def row_checksum(image: np.ndarray, **params: object) -> np.ndarray:
    """Nudge each row by -1, 0 or +1 grey level from a checksum of its values, computed in a
    Python loop (the kind of per-row bookkeeping a custom transform does)."""
    offsets = []
    for row in image:
        acc = 0
        for value in row[::STEP].ravel().tolist():
            acc = (acc * 31 + value) & 0xFFFF
        offsets.append(acc % 3 - 1)
    shift = np.asarray(offsets, dtype=np.int16).reshape(-1, *([1] * (image.ndim - 1)))
    return np.clip(image.astype(np.int16) + shift, 0, 255).astype(np.uint8)


def pipeline() -> A.Compose:
    return A.Compose(
        [
            A.RandomResizedCrop(size=(224, 224), p=1.0),
            A.HorizontalFlip(p=0.5),
            A.Lambda(image=row_checksum, name="row_checksum", p=1.0),
            A.ColorJitter(p=0.8),
        ]
    )
