"""Test images: the study's 10x10 black/white checkerboard, generated once per (size, count, format)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from experiments.workload import list_images

CACHE_ROOT = Path(os.environ.get("AUGSCALE_CACHE", Path(__file__).resolve().parent.parent / ".cache"))


def checkerboard(width: int, height: int, squares: int = 10) -> np.ndarray:
    """An RGB uint8 image of squares x squares alternating black and white cells."""
    rows = (np.arange(height) * squares // height)[:, None]
    cols = (np.arange(width) * squares // width)[None, :]
    board = ((rows + cols) % 2 * 255).astype(np.uint8)
    return np.repeat(board[:, :, None], 3, axis=2)


def image_dir(width: int, height: int, count: int, fmt: str, root: Path = CACHE_ROOT) -> Path:
    return root / "images" / f"checkerboard-{width}x{height}-n{count}-{fmt}"


def ensure_images(width: int, height: int, count: int, fmt: str, root: Path = CACHE_ROOT) -> Path:
    """The folder of `count` checkerboards, generated only if the cache lacks it."""
    target = image_dir(width, height, count, fmt, root)
    if target.is_dir() and len(list_images(target)) == count:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    bgr = cv2.cvtColor(checkerboard(width, height), cv2.COLOR_RGB2BGR)
    for n in range(count):
        if not cv2.imwrite(str(tmp / f"image_{n:04d}.{fmt}"), bgr):
            raise OSError(f"cannot write test image into {tmp}")
    shutil.rmtree(target, ignore_errors=True)
    try:
        tmp.rename(target)  # atomic: a half-written cache folder is never seen
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return target
