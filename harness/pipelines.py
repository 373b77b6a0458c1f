"""`pipeline:` of a config, read and checked before anything runs.

The key takes a file written by `A.save` (YAML or JSON, a path relative to the config), the same
dict inline, or `module:function` returning a Compose (the module beside the config or on the
path). `stored_form` turns each into what the run folder stores in its config: the serialised
dict itself, or {function, path}; absent, the study's Compose (configs/pipelines/study.yaml).
Every mistake is one line naming the file, where in the pipeline, and the fix.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import yaml
from albumentations.core.serialization import SERIALIZABLE_REGISTRY, shorten_class_name

from experiments.pipeline import Pipeline, seeded, study_pipeline
from harness.errors import HarnessError

KEY = "pipeline"
FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
NOT_8_BIT = ("Normalize", "ToFloat", "ToTensorV2")  # transforms whose output is not uint8
UNSAVED_P = ("Compose", "Sequential")  # albumentations gives these no default p


def stored_form(value: Any, config_path: Path) -> dict | None:
    """The pipeline as a run folder stores it, checked; None for the study's."""
    if value is None:
        return None
    where = str(config_path)
    if isinstance(value, str) and FUNCTION.match(value):
        return _function(value, str(Path(config_path).resolve().parent), where)
    if isinstance(value, dict) and "function" in value:
        return _function(str(value["function"]), str(value.get("path", "")), where)
    if isinstance(value, str):
        path = Path(config_path).parent / value
        return _serialised(_read(path), str(path))
    if isinstance(value, dict):
        return _serialised(value, where)
    raise HarnessError(where, None, f"is a {type(value).__name__}", _FIX_KINDS)


def pipeline_of(stored: dict | None) -> Pipeline:
    """What the workers get for a stored pipeline."""
    if stored is None:
        return study_pipeline()
    if "function" in stored:
        return Pipeline(function=stored["function"], path=stored.get("path", ""))
    return Pipeline(text=json.dumps(stored, sort_keys=True))


def digest(stored: dict | None) -> str:
    """sha256 of the pipeline's serialised text (for a function, of its module's source)."""
    pipeline = pipeline_of(stored)
    text = _module_text(pipeline.function) if pipeline.function else pipeline.text
    return hashlib.sha256(text.encode()).hexdigest()


def _module_text(function: str) -> str:
    module = importlib.import_module(function.partition(":")[0])
    return Path(module.__file__).read_text() if module.__file__ else function


def summary(stored: dict | None) -> dict:
    """What meta.json records beside the stored config: the pipeline named, and its digest."""
    found = {"name": describe(stored), "sha256": digest(stored)}
    if stored is not None and "function" in stored:  # the module's source, to repeat the run
        found["module_text"] = _module_text(stored["function"])
    return found


def describe(stored: dict | None) -> str:
    """One line naming the pipeline, for the plan and the report."""
    if stored is None:
        return "the study's Compose (configs/pipelines/study.yaml)"
    short = digest(stored)[:12]
    if "function" in stored:
        return f"{stored['function']} (from {stored.get('path') or 'the path'}), sha256 {short}"
    names = [n["__class_fullname__"] for n in stored["transform"].get("transforms", [])]
    return f"a serialised Compose of {', '.join(names)}, sha256 {short}"


def try_once(stored: dict | None, image: np.ndarray, where: str, config: Any) -> None:
    """Apply the pipeline once before the sweep, to the first input image (`where` names it):
    a failure, or an output the saved format cannot hold, is one line here instead of a failed
    cell later."""
    try:
        out = seeded(pipeline_of(stored), config.seed)(image=image)["image"]
    except Exception as err:  # noqa: BLE001 - a user's pipeline may raise anything
        raise HarnessError(
            where,
            KEY,
            f"fails on this image ({type(err).__name__}: {_first(err)})",
            "fix the transform it names, or try the pipeline on this image by hand",
        ) from None
    fmt = config.images.save_as or config.images.format
    if True in config.saving and fmt != "npy" and not _eight_bit(out):
        raise HarnessError(
            where,
            KEY,
            f"gives {np.asarray(out).dtype} output{_culprit(stored)}, which {fmt} cannot hold",
            "set images.save_as: npy (lossless), or saving: [false]",
        )


def _eight_bit(out: object) -> bool:
    return isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.ndim in (2, 3)


def _culprit(stored: dict | None) -> str:
    if stored is None or "function" in stored:
        return ""
    found = [p for p, node in _nodes(stored["transform"]) if _name(node) in NOT_8_BIT]
    return f" (from {found[0]})" if found else ""


_FIX_KINDS = "give a file written by A.save, the same dict inline, or module:function"


def _read(path: Path) -> dict:
    if not path.is_file():
        raise HarnessError(
            str(path),
            KEY,
            "does not exist",
            "give the path of a file written by "
            "A.save(transform, path, data_format='yaml'), relative to the config",
        )
    try:
        data = yaml.safe_load(path.read_text())  # JSON is YAML too
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise HarnessError(
            str(path), None, f"is not valid YAML or JSON ({_first(err)})", "write it with A.save"
        ) from None
    if not isinstance(data, dict):
        raise HarnessError(
            str(path), None, "is not albumentations' format (no transform)", "write it with A.save"
        )
    return data


def _serialised(data: dict, where: str) -> dict:
    if "transform" not in data and "__class_fullname__" in data:
        data = {"__version__": A.__version__, "transform": data}
    if not isinstance(data.get("transform"), dict):
        raise HarnessError(
            where,
            KEY,
            "is not albumentations' format (no transform)",
            "write it with A.save(transform, path), or " + _FIX_KINDS,
        )
    for path, node in _nodes(data["transform"], "transform"):
        _check_node(node, path, where)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            A.from_dict(data)
    except Exception as err:  # noqa: BLE001 - albumentations raises many kinds
        raise HarnessError(
            where,
            KEY,
            f"cannot be built ({type(err).__name__}: {_first(err)})",
            "write it with A.save from a pipeline that runs",
        ) from None
    return data


def _nodes(node: dict, path: str = "transform") -> list[tuple[str, dict]]:
    found = [(path, node)]
    for j, inner in enumerate(node.get("transforms", []) if isinstance(node, dict) else []):
        found += _nodes(inner, f"{path}.transforms[{j}]")
    return found


def _name(node: dict) -> str:
    return shorten_class_name(str(node.get("__class_fullname__", "")))


def _check_node(node: Any, path: str, where: str) -> None:
    if not isinstance(node, dict) or "__class_fullname__" not in node:
        raise HarnessError(
            where,
            path,
            "is not a transform (no __class_fullname__)",
            "write the pipeline with A.save",
        )
    name = _name(node)
    if name == "Lambda":
        raise HarnessError(
            where,
            path,
            "is a Lambda, which albumentations cannot serialise",
            "give pipeline: module:function, a function returning the Compose",
        )
    if name not in SERIALIZABLE_REGISTRY:
        raise HarnessError(
            where,
            path,
            f"unknown transform {name!r} in albumentations {A.__version__}",
            "check its spelling against albumentations' docs",
        )
    if "p" not in node and name not in UNSAVED_P:
        raise HarnessError(
            where,
            f"{path} ({name})",
            "has no p: albumentations would apply it with p=0.5 and only a warning",
            "give p: 1.0 to always apply it, or its probability",
        )
    if "transforms" in node:
        return
    args = {k: v for k, v in node.items() if k != "__class_fullname__"}
    try:
        SERIALIZABLE_REGISTRY[name](**args)
    except Exception as err:  # noqa: BLE001 - pydantic, TypeError, ValueError
        raise HarnessError(
            where,
            f"{path} ({name})",
            f"wrong arguments: {_first(err)}",
            f"see {name}'s arguments in albumentations {A.__version__}",
        ) from None


def _function(ref: str, folder: str, where: str) -> dict:
    module_name, _, name = ref.partition(":")
    if folder and folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - any import-time error is the user's module's
        raise HarnessError(
            where,
            KEY,
            f"cannot import {module_name} ({type(err).__name__}: {_first(err)})",
            f"put {module_name}.py beside the config or on PYTHONPATH",
        ) from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise HarnessError(
            where,
            KEY,
            f"{module_name} has no function {name}",
            f"define def {name}() returning an A.Compose",
        )
    try:
        built = fn()
    except Exception as err:  # noqa: BLE001
        raise HarnessError(
            where,
            KEY,
            f"{ref}() raised {type(err).__name__}: {_first(err)}",
            "make it return the Compose without arguments",
        ) from None
    if not isinstance(built, A.Compose):
        raise HarnessError(
            where,
            KEY,
            f"{ref}() returned {type(built).__name__}, not a Compose",
            "return A.Compose([...])",
        )
    return {"function": ref, "path": folder}


def _first(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return " ".join(lines[:3])[:300] if lines else type(err).__name__
