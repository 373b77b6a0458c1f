"""Test images: the study's 10x10 black/white checkerboard, generated once per (size, count,
format); and the inventory of a user's folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from experiments.workload import IMAGE_SUFFIXES, list_images

CACHE_ROOT = Path(
    os.environ.get("AUGSCALE_CACHE", Path(__file__).resolve().parent.parent / ".cache")
)


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
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
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


@dataclass
class Inventory:
    """What a user's image folder holds, checked before anything runs."""

    files: list[Path] = field(default_factory=list)  # readable images, sorted by name
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # file name -> reason
    conversions: dict[str, str] = field(
        default_factory=dict
    )  # file name -> what reading does to it
    ignored: list[str] = field(default_factory=list)  # subfolders, hidden and non-image files

    def summary(self) -> dict:
        return {
            "readable": len(self.files),
            "unreadable": self.unreadable,
            "conversions": self.conversions,
            "ignored": self.ignored,
            "sizes": sorted({f"{w}x{h}" for w, h in self.sizes.values()}),
        }


def _conversion(image: np.ndarray) -> str | None:
    notes = []
    if image.dtype != np.uint8:
        notes.append(f"{image.dtype} -> uint8")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 1:
        notes.append("grayscale -> RGB")
    elif channels == 4:
        notes.append("RGBA -> RGB (alpha dropped)")
    return ", ".join(notes) or None


def inspect_folder(folder: Path) -> Inventory:
    """Decode every candidate file once; every strategy reads with cv2.IMREAD_COLOR, which
    turns grayscale, RGBA and 16-bit images into 8-bit 3-channel ones, as recorded here."""
    inv = Inventory()
    for entry in sorted(Path(folder).iterdir()):
        if (
            entry.name.startswith(".")
            or entry.is_dir()
            or entry.suffix.lower() not in IMAGE_SUFFIXES
        ):
            inv.ignored.append(entry.name + ("/" if entry.is_dir() else ""))
            continue
        image = cv2.imread(str(entry), cv2.IMREAD_UNCHANGED)
        if image is None or image.size == 0:
            inv.unreadable[entry.name] = (
                "OpenCV cannot decode it (corrupt, truncated or not an image)"
            )
            continue
        inv.files.append(entry)
        inv.sizes[entry.name] = (image.shape[1], image.shape[0])
        if note := _conversion(image):
            inv.conversions[entry.name] = note
    return inv


def readable_view(inv: Inventory, target: Path) -> Path:
    """A folder of links to the readable files only, so strategies list just those."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for f in inv.files:
        (target / f.name).symlink_to(f.resolve())
    return target
