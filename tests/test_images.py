"""The study's 10x10 checkerboard and the image cache."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from experiments.workload import list_images
from harness.images import checkerboard, ensure_images, image_dir, inspect_folder

SIZES = [(160, 80), (250, 130), (1000, 500), (37, 23), (163, 87), (80, 80)]


def runs(line: np.ndarray) -> list[int]:
    """The values of consecutive equal-valued runs along a 1-D array."""
    edges = np.flatnonzero(np.diff(line.astype(int))) + 1
    return [int(line[0])] + [int(line[e]) for e in edges]


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_checkerboard_shape_dtype_values(width, height):
    board = checkerboard(width, height)
    assert board.shape == (height, width, 3)
    assert board.dtype == np.uint8
    assert set(np.unique(board).tolist()) <= {0, 255}
    assert set(np.unique(board).tolist()) == {0, 255}
    # grey: the three channels are equal
    assert (board[:, :, 0] == board[:, :, 1]).all() and (board[:, :, 1] == board[:, :, 2]).all()


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_checkerboard_ten_by_ten_alternating_cells(width, height):
    board = checkerboard(width, height)[:, :, 0]
    for r in range(10):
        y = int((r + 0.5) * height / 10)
        for c in range(10):
            x = int((c + 0.5) * width / 10)
            expected = 0 if (r + c) % 2 == 0 else 255
            assert board[y, x] == expected, f"cell ({r}, {c}) at ({x}, {y})"
    assert board[0, 0] == 0  # top-left cell black
    # every row and every column crosses exactly 10 cells, alternating
    for y in range(height):
        values = runs(board[y])
        assert len(values) == 10
        assert values == [values[0], 255 - values[0]] * 5
    for x in range(width):
        assert len(runs(board[:, x])) == 10


@pytest.mark.parametrize(("width", "height"), [(250, 130), (37, 23), (163, 87)])
def test_checkerboard_cells_nearly_equal(width, height):
    """Cells differ in size by at most one pixel when the size does not divide by 10."""
    board = checkerboard(width, height)[:, :, 0]
    col_widths = np.diff(np.flatnonzero(np.diff(board[0].astype(int))) + 1, prepend=0, append=width)
    row_heights = np.diff(
        np.flatnonzero(np.diff(board[:, 0].astype(int))) + 1, prepend=0, append=height
    )
    assert col_widths.sum() == width and row_heights.sum() == height
    assert col_widths.max() - col_widths.min() <= 1
    assert row_heights.max() - row_heights.min() <= 1


def test_checkerboard_other_square_count():
    board = checkerboard(120, 60, squares=4)[:, :, 0]
    assert len(runs(board[0])) == 4 and len(runs(board[:, 0])) == 4


@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_ensure_images_writes_count_files(tmp_path, fmt):
    folder = ensure_images(160, 80, 3, fmt, root=tmp_path)
    assert folder == image_dir(160, 80, 3, fmt, tmp_path)
    assert folder.is_relative_to(tmp_path)
    files = list_images(folder)
    assert len(files) == 3
    assert sorted(p.name for p in folder.iterdir()) == [f"image_{n:04d}.{fmt}" for n in range(3)]
    expected = checkerboard(160, 80)
    for path in files:
        assert path.suffix == f".{fmt}"
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        assert image is not None
        assert image.shape == (80, 160, 3)
        if fmt == "png":
            assert np.array_equal(image, expected)  # lossless; grey so BGR == RGB
        else:
            assert np.abs(image.astype(int) - expected).mean() < 10  # lossy, but the same board
    # no temporary folders left beside the cache folder
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_ensure_images_file_format_by_content(tmp_path):
    jpg = list_images(ensure_images(160, 80, 1, "jpg", root=tmp_path))[0]
    png = list_images(ensure_images(160, 80, 1, "png", root=tmp_path))[0]
    assert jpg.read_bytes()[:3] == b"\xff\xd8\xff"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ensure_images_second_call_does_not_rewrite(tmp_path):
    folder = ensure_images(160, 80, 2, "jpg", root=tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    inode = folder.stat().st_ino
    again = ensure_images(160, 80, 2, "jpg", root=tmp_path)
    assert again == folder
    assert folder.stat().st_ino == inode
    assert {p.name: p.stat().st_mtime_ns for p in again.iterdir()} == before


def test_ensure_images_regenerates_incomplete_cache(tmp_path):
    folder = ensure_images(160, 80, 2, "png", root=tmp_path)
    list_images(folder)[0].unlink()
    again = ensure_images(160, 80, 2, "png", root=tmp_path)
    assert len(list_images(again)) == 2


def test_ensure_images_distinct_folders_per_key(tmp_path):
    a = ensure_images(160, 80, 2, "jpg", root=tmp_path)
    b = ensure_images(80, 160, 2, "jpg", root=tmp_path)
    c = ensure_images(160, 80, 3, "jpg", root=tmp_path)
    d = ensure_images(160, 80, 2, "png", root=tmp_path)
    assert len({a, b, c, d}) == 4
    assert cv2.imread(str(list_images(b)[0])).shape == (160, 80, 3)


def _folder_of(tmp_path, n):
    for j in range(n):
        cv2.imwrite(str(tmp_path / f"im{j:03d}.png"), checkerboard(40 + j, 30))
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_a_sample_of_a_folder_is_seeded_sorted_and_only_it_is_decoded(tmp_path):
    folder = _folder_of(tmp_path, 12)
    whole = inspect_folder(folder)
    assert len(whole.files) == 12 and whole.sampled == ""
    first, again = inspect_folder(folder, 5, seed=0), inspect_folder(folder, 5, seed=0)
    assert first.files == again.files == sorted(first.files) and len(first.files) == 5
    assert set(first.sizes) == {f.name for f in first.files}  # the rest was never read
    assert first.sampled == "5 of 12 files, seed 0" and first.ignored == ["notes.txt"]
    assert inspect_folder(folder, 5, seed=1).files != first.files
    assert len(inspect_folder(folder, 50).files) == 12  # a sample larger than the folder: all
