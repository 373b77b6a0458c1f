"""The tiny workload the strategy tests share: 2 images of 160x80, 3 augmentations each."""

from __future__ import annotations

from harness.config import Config

N_IMAGES, AUGMENTATIONS = 2, 3


def config(**changes: object) -> Config:
    data = {
        "name": "t",
        "kind": "strong",
        "images": {"count": N_IMAGES, "size": [160, 80]},
        "augmentations_per_image": AUGMENTATIONS,
        "workers": [2, 3],
        "repeats": 1,
        "warmup": 0,
        "seed": 0,
    }
    return Config.model_validate({**data, **changes})
