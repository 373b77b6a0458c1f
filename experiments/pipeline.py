"""The augmentation pipeline a task applies, as every process gets it.

Three sources, one form: albumentations' own serialised dict (what `A.save` writes and `A.load`
reads), carried as JSON text so it pickles small and needs no file on a worker host; or a
`module:function` that returns a Compose, for pipelines albumentations cannot serialise (custom
or `Lambda` transforms), imported from a folder the Pipeline names. The study's Compose is the
serialised file configs/pipelines/study.yaml.

Seeding: augmentation k of image i is seeded with the same number in every strategy. A user's
pipeline is built once per thread and reseeded per task (`set_random_seed`), which gives the
same pixels as a fresh Compose with that seed and costs a fraction of building one. The study's
pipeline is rebuilt per task, as its Algorithm 1 does, so its measured work stays the study's.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import yaml

STUDY_FILE = Path(__file__).resolve().parents[1] / "configs" / "pipelines" / "study.yaml"


@dataclass(frozen=True)
class Pipeline:
    """What a worker needs to build the pipeline. `text`: albumentations' serialised dict as
    JSON; or `function` ("module:function") imported with `path` put first on sys.path.
    `per_task`: build a fresh Compose for every task instead of reseeding one per thread."""

    text: str = ""
    function: str = ""
    path: str = ""
    per_task: bool = False

    def build(self) -> A.Compose:
        if self.function:
            return _call(self.function, self.path)
        return A.from_dict(_parsed(self.text))


@functools.cache
def study_pipeline() -> Pipeline:
    """The study's Compose from its shipped file, rebuilt per task as the study does."""
    return Pipeline(text=serialised_text(STUDY_FILE), per_task=True)


def serialised_text(path: Path) -> str:
    """A file written by `A.save` (YAML or JSON) as the JSON text a Pipeline carries."""
    return json.dumps(yaml.safe_load(Path(path).read_text()), sort_keys=True)


@functools.lru_cache(maxsize=8)
def _parsed(text: str) -> dict:
    """The serialised dict, parsed once per process: from_dict does not change it."""
    return json.loads(text)


def _call(function: str, path: str) -> A.Compose:
    module, _, name = function.partition(":")
    if path and path not in sys.path:
        sys.path.insert(0, path)
    return getattr(importlib.import_module(module), name)()


_local = threading.local()


def seeded(pipeline: Pipeline, seed: int) -> A.Compose:
    """The pipeline for one task, seeded with `seed`: built fresh (per_task), or this thread's
    one Compose reseeded."""
    if pipeline.per_task:
        compose = pipeline.build()
    else:
        built = _local.__dict__.setdefault("built", {})
        compose = built.get(pipeline)
        if compose is None:
            compose = built[pipeline] = pipeline.build()
    compose.set_random_seed(seed)
    return compose
