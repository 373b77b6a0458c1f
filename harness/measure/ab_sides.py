"""The two sides of an A/B run: for each, the code it measures (the `experiments` package of a
git revision, of another checkout, or of this working tree) and the config it runs.

The harness that measures is always this one; only what is measured changes from side to side,
so both sides are timed by the same instruments, children and protocol.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.measure.sweep import Sweep

PACKAGE = "experiments"
REPO = Path(__file__).resolve().parents[2]  # this checkout: its experiments/ is the default


@dataclass(frozen=True)
class Code:
    """The folder whose `experiments/` a side imports, and how to name it to a reader."""

    root: Path
    source: str

    @property
    def package(self) -> Path:
        return (self.root / PACKAGE).resolve()


@dataclass(frozen=True)
class Side:
    name: str  # "A" or "B"
    code: Code
    config_path: str
    sweep: Sweep


def code_of(given: str | None, flag: str, scratch: Path) -> Code:
    """What `--a`/`--b` names: nothing (this working tree), a folder holding `experiments/`,
    or a git revision of this repository, whose `experiments/` is extracted into `scratch`."""
    if given is None:
        return Code(REPO, f"this working tree ({_describe_tree()})")
    folder = Path(given)
    if folder.is_dir():
        if not (folder / PACKAGE / "__init__.py").is_file():
            raise HarnessError(
                flag,
                None,
                f"the folder {given} holds no {PACKAGE}/ package",
                "name a checkout of this project (its root), or a git revision",
            )
        return Code(folder.resolve(), f"the folder {folder.resolve()}")
    commit = _commit_of(given, flag)
    root = scratch / commit[:12]
    if not (root / PACKAGE).is_dir():
        _extract(commit, root)
    return Code(root, f"revision {given} ({commit[:10]})")


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, check=False)


def _commit_of(rev: str, flag: str) -> str:
    found = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if found.returncode != 0:
        raise HarnessError(
            flag,
            None,
            f"{rev!r} is neither a folder nor a revision of {REPO}",
            "give a commit, branch or tag (git log --oneline), or a checkout's folder",
        )
    return found.stdout.decode().strip()


def _extract(commit: str, root: Path) -> None:
    archive = _git("archive", "--format=tar", commit, PACKAGE)
    if archive.returncode != 0:
        raise HarnessError(
            "--a/--b",
            None,
            f"revision {commit[:10]} has no {PACKAGE}/ folder",
            "give a revision of this project from after its layout had experiments/",
        )
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")


def _describe_tree() -> str:
    head = _git("rev-parse", "--short=10", "HEAD")
    if head.returncode != 0:
        return "not a git checkout"
    dirty = _git("status", "--porcelain", "--", PACKAGE).stdout.strip()
    return head.stdout.decode().strip() + (f" with changes to {PACKAGE}/" if dirty else "")
