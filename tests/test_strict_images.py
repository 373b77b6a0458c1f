"""Truncated images are unreadable, found by Pillow's strict decoder beside OpenCV
(which decodes a JPEG cut short into a mostly gray image and only warns). Real files, really
cut at several lengths."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from harness import cli
from harness.images import (
    END_MARKERS,
    Verdict,
    inspect_folder,
    strict_decode,
    strict_verdict,
)

CUTS = [0.3, 0.6, 0.9, 0.98]  # the share of the file kept


def photo(ext: str) -> bytes:
    """A small image with detail everywhere (noise), so every part of the file is pixel data."""
    rng = np.random.default_rng(0)
    pixels = cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), np.uint8), (3, 3), 0)
    ok, data = cv2.imencode(ext, pixels)
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("ext", [".jpg", ".png"])
@pytest.mark.parametrize("keep", CUTS)
def test_a_file_cut_short_is_unreadable(ext, keep, tmp_path):
    data = photo(ext)
    (tmp_path / f"cut{ext}").write_bytes(data[: int(len(data) * keep)])
    (tmp_path / f"whole{ext}").write_bytes(data)
    inv = inspect_folder(tmp_path)
    assert list(inv.unreadable) == [f"cut{ext}"]
    assert [f.name for f in inv.files] == [f"whole{ext}"] and not inv.notes


@pytest.mark.parametrize("keep", CUTS)
def test_opencv_alone_would_take_a_cut_jpeg(keep, tmp_path):
    """Why the strict check exists: cv2.imread, as the strategies read, decodes the cut JPEG to
    a full-size image (and only warns)."""
    data = photo(".jpg")
    cut = data[: int(len(data) * keep)]
    (tmp_path / "cut.jpg").write_bytes(cut)
    assert cv2.imread(str(tmp_path / "cut.jpg"), cv2.IMREAD_COLOR).shape == (96, 128, 3)
    assert "pixel data missing" in strict_verdict(cut).unreadable


@pytest.mark.parametrize("ext, fmt", [(".jpg", "JPEG"), (".png", "PNG")])
def test_a_file_lacking_only_its_end_marker_is_readable_with_a_note(ext, fmt):
    data = photo(ext)
    marker = END_MARKERS[fmt][0]
    assert data.endswith(marker)
    verdict = strict_verdict(data[: -len(marker)])
    assert verdict.unreadable is None
    assert verdict.note and END_MARKERS[fmt][1] in verdict.note
    assert strict_verdict(data) == Verdict()  # the whole file: nothing to say


def test_jpeg_draft_mode_still_reads_the_whole_stream():
    """The strict check decodes JPEGs at 1/8 scale; a cut in the last tenth is still seen."""
    data = photo(".jpg")
    assert strict_decode(data) is None
    assert "truncated" in strict_decode(data[: int(len(data) * 0.95)])


@pytest.mark.parametrize("ext", [".bmp", ".tiff", ".webp"])
def test_other_accepted_formats_cut_short_are_unreadable(ext, tmp_path):
    data = photo(ext)
    (tmp_path / f"cut{ext}").write_bytes(data[: len(data) // 2])
    (tmp_path / f"whole{ext}").write_bytes(data)
    inv = inspect_folder(tmp_path)
    assert set(inv.unreadable) == {f"cut{ext}"}
    assert [f.name for f in inv.files] == [f"whole{ext}"]


def test_a_format_pillow_cannot_open_is_left_to_opencv():
    """Bytes Pillow cannot identify get no strict verdict: OpenCV's (already given) stands."""
    assert strict_verdict(b"\x00\x01 no format Pillow knows") == Verdict()


def write_config(path, folder, **images):  # noqa: ANN001, ANN003, ANN201
    config = {
        "name": "strict",
        "kind": "strong",
        "images": {"input_dir": str(folder), **images},
        "augmentations_per_image": 1,
        "strategies": ["P_1"],
        "saving": [True],
        "workers": [2],
        "repeats": 1,
        "warmup": 0,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def photo_folder(tmp_path):  # noqa: ANN001, ANN201
    folder = tmp_path / "photos"
    folder.mkdir()
    jpg, png = photo(".jpg"), photo(".png")
    (folder / "a_whole.jpg").write_bytes(jpg)
    (folder / "b_cut.jpg").write_bytes(jpg[: len(jpg) * 2 // 3])
    (folder / "c_no_eoi.jpg").write_bytes(jpg[:-2])
    (folder / "d_cut.png").write_bytes(png[: len(png) // 2])
    return folder


def test_truncated_inputs_stop_the_run_before_anything(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", photo_folder(tmp_path))
    out = tmp_path / "run"
    assert cli.main(["run", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "b_cut.jpg" in err and "d_cut.png" in err and "\n" not in err
    assert "c_no_eoi.jpg" not in err and "a_whole.jpg" not in err
    assert not out.exists()


# Skipped truncated inputs recorded in meta.json and the report: tests/test_damaged_runs.py,
# whose run folder is made from such a folder.
