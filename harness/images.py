"""Test images: the study's 10x10 black/white checkerboard, generated once per (size, count,
format); and the inventory of a user's folder.

The inventory decodes every file twice: with OpenCV, as the strategies read it, and with Pillow
in its strict mode (truncated images refused). OpenCV decodes a JPEG cut short into a full-size
image, mostly flat gray, and only warns; Pillow refuses it. JPEGs are decoded by Pillow at 1/8
scale (draft mode), which still reads every byte of the entropy-coded stream.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

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
    notes: dict[str, str] = field(default_factory=dict)  # file name -> readable, but noted
    sampled: str = ""  # "N of M files, seed S" when images.count took a sample

    def summary(self) -> dict:
        return {
            "readable": len(self.files),
            "unreadable": self.unreadable,
            "conversions": self.conversions,
            "ignored": self.ignored,
            "notes": self.notes,
            "sizes": sorted({f"{w}x{h}" for w, h in self.sizes.values()}),
            "sampled": self.sampled,
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


def inspect_folder(folder: Path, sample: int | None = None, seed: int = 0) -> Inventory:
    """Decode every candidate file once (or a seeded sample of `sample` of them, so a folder of
    100k files is not read whole); every strategy reads with cv2.IMREAD_COLOR, which turns
    grayscale, RGBA and 16-bit images into 8-bit 3-channel ones, as recorded here."""
    inv = Inventory()
    candidates = []
    for entry in sorted(Path(folder).iterdir()):
        if (
            entry.name.startswith(".")
            or entry.is_dir()
            or entry.suffix.lower() not in IMAGE_SUFFIXES
        ):
            inv.ignored.append(entry.name + ("/" if entry.is_dir() else ""))
        else:
            candidates.append(entry)
    if sample is not None and sample < len(candidates):
        picked = np.random.default_rng(seed).choice(len(candidates), sample, replace=False)
        inv.sampled = f"{sample} of {len(candidates)} files, seed {seed}"
        candidates = [candidates[j] for j in sorted(picked)]
    for entry in candidates:
        # cv2.imread as the strategies read (cv2.imdecode refuses some files imread takes)
        image = cv2.imread(str(entry), cv2.IMREAD_UNCHANGED)
        if image is None or image.size == 0:
            inv.unreadable[entry.name] = (
                "OpenCV cannot decode it (corrupt, truncated or not an image)"
            )
            continue
        verdict = strict_verdict(entry.read_bytes())
        if verdict.unreadable:
            inv.unreadable[entry.name] = verdict.unreadable
            continue
        if verdict.note:
            inv.notes[entry.name] = verdict.note
        inv.files.append(entry)
        inv.sizes[entry.name] = (image.shape[1], image.shape[0])
        if note := _conversion(image):
            inv.conversions[entry.name] = note
    return inv


# The end markers a complete file carries; a file lacking only this is still whole.
END_MARKERS = {
    "JPEG": (b"\xff\xd9", "JPEG end-of-image marker (EOI)"),
    "PNG": (b"\x00\x00\x00\x00IEND\xaeB`\x82", "PNG end chunk (IEND)"),
}


@dataclass(frozen=True)
class Verdict:
    unreadable: str | None = None  # why the file counts as unreadable
    note: str | None = None  # readable, with a remark for meta.json and the report


def strict_decode(data: bytes, draft: bool = True) -> str | None:
    """Decode all of `data` with Pillow, truncated images refused: None if whole, else why.
    JPEGs decode at 1/8 scale (draft mode), which still reads every entropy-coded byte."""
    try:
        _pixels(data, draft)
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        return f"{type(err).__name__}: {err}"
    return None


def _pixels(data: bytes, draft: bool) -> bytes:
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # Pillow's default; strict whatever else set it
    with Image.open(io.BytesIO(data)) as image:
        if draft and image.format == "JPEG":
            image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
        return image.tobytes()


FILLERS = (b"", b"\x00" * 64, b"\xaa" * 64)


def _whole_but_for(data: bytes, marker: bytes) -> bool:
    """True when only the end marker is missing. A decoder skips stray bytes between the end
    of the pixel data and the marker, but decodes them as pixel data if the file was cut inside
    it (libjpeg then fills the rest with gray, and warns only). So: with the marker added back,
    preceded by two different fillers or none, the file must decode, strictly and at full
    scale, to the same pixels each time. Runs only for files the strict check refused."""
    decoded = set()
    for filler in FILLERS:
        try:
            decoded.add(_pixels(data + filler + marker, draft=False))
        except (OSError, SyntaxError, ValueError, EOFError):
            return False
    return len(decoded) == 1


def strict_verdict(data: bytes) -> Verdict:
    """Pillow's strict verdict on a file OpenCV could decode. A format Pillow cannot open at all
    is left to OpenCV's verdict; a file whose pixel data is complete and that lacks only its end
    marker is readable, with a note."""
    fmt = None
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format
        problem = strict_decode(data)
    except (UnidentifiedImageError, Image.DecompressionBombError):
        return Verdict()
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        problem = f"{type(err).__name__}: {err}"
    if problem and "decoder" in problem and "not available" in problem:
        return Verdict()  # this Pillow lacks the codec: OpenCV's verdict stands
    marker, label = END_MARKERS.get(fmt or "", (b"", ""))
    note = f"pixel data complete, but the file lacks its {label}"
    if problem is None:
        return Verdict(note=note if marker and marker not in data else None)
    if marker and _whole_but_for(data, marker):
        return Verdict(note=note)
    return Verdict(unreadable=f"truncated or corrupt: pixel data missing ({problem})")


def folder_digest(folders: list[Path]) -> str:
    """sha256 over the names and bytes of the images the strategies list in `folders`: what
    resume compares, so a run is never finished on other inputs."""
    h = hashlib.sha256()
    for folder in folders:
        for path in list_images(folder):
            h.update(path.name.encode() + b"\0")
            with open(path, "rb") as f:
                h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()


def readable_view(inv: Inventory, target: Path) -> Path:
    """A folder of links to the readable files only, so strategies list just those."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for f in inv.files:
        (target / f.name).symlink_to(f.resolve())
    return target
