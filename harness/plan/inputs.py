"""The images a sweep reads: generated checkerboards (cached), or a user's folder, inspected
first."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.config import Config
from harness.errors import HarnessError
from harness.images import (
    Inventory,
    ensure_images,
    folder_digest,
    inspect_folder,
    readable_view,
)


@dataclass
class Inputs:
    n_images: int
    size: tuple[int, int]  # recorded as width, height for every cell of a user folder
    inventory: Inventory | None = None
    dirs: dict[tuple[int, int], Path] = field(default_factory=dict)
    digest: str | None = None  # sha256 of the images read (names and bytes), once prepared

    def meta(self) -> dict:
        return {
            "n_images": self.n_images,
            "input_inventory": self.inventory.summary() if self.inventory else None,
            "inputs_sha256": self.digest,
        }


def with_folder_size(config: Config, inputs: Inputs) -> Config:
    """A user folder's cells are labelled with its first image's size (not images.size)."""
    if inputs.inventory is None:
        return config
    return config.model_copy(
        update={"images": config.images.model_copy(update={"size": list(inputs.size)})}
    )


def inspect(config: Config, config_path: str) -> Inputs:
    """Check the inputs before anything runs: every unreadable file is listed, exit 2."""
    folder = config.images.input_dir
    if folder is None:
        return Inputs(config.images.count, config.base_size)
    # images.count, when the config gives it, takes a seeded sample of the folder's files
    sample = config.images.count if "count" in config.images.model_fields_set else None
    inv = inspect_folder(folder, sample, config.seed)
    if inv.unreadable and not config.images.skip_unreadable:
        listing = "; ".join(f"{name}: {why}" for name, why in inv.unreadable.items())
        raise HarnessError(
            config_path,
            "images.input_dir",
            f"{len(inv.unreadable)} file(s) in {folder} cannot be read ({listing})",
            "remove or repair them, or set images.skip_unreadable: true to leave them out",
        )
    if not inv.files:
        raise HarnessError(
            config_path,
            "images.input_dir",
            f"no readable image in {folder}",
            "put .jpg/.png/.bmp/.tif/.webp images in it",
        )
    return Inputs(len(inv.files), inv.sizes[inv.files[0].name], inv)


def prepare(config: Config, inputs: Inputs, run_dir: Path) -> Inputs:
    """Folders to read from, per image size: generated once and cached, or a view of the
    user's readable files (so unreadable, hidden and non-image entries are never listed)."""
    if inputs.inventory is not None:
        inputs.dirs = {inputs.size: readable_view(inputs.inventory, run_dir / "inputs")}
    else:
        sizes = {config.base_size} | {size for _, size in config.sweep}
        inputs.dirs = {
            s: ensure_images(s[0], s[1], config.images.count, config.images.format)
            for s in sorted(sizes)
        }
    inputs.digest = folder_digest([inputs.dirs[s] for s in sorted(inputs.dirs)])
    return inputs
