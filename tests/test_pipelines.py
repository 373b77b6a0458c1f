"""`pipeline:` in the config: the study's Compose as a shipped file, a user's serialised pipeline
or module:function, the same pixels in every strategy, and each kind of bad input refused before
anything runs in one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import yaml

from experiments.pipeline import STUDY_FILE, Pipeline, seeded, study_pipeline
from harness import pipelines
from harness.cli import main
from harness.config import load_config
from harness.errors import HarnessError
from harness.images import ensure_images
from harness.measure.verify import run_digest
from tests._tiny import N_IMAGES
from tests._tiny import config as tiny_config

USER = A.Compose(
    [
        A.RandomResizedCrop(size=(64, 64), p=1.0),
        A.HorizontalFlip(p=0.5),
        A.ColorJitter(p=0.8),
    ]
)
LAMBDA_MODULE = '''
import albumentations as A


def _invert(image, **kwargs):
    out = image
    for _ in range(3):  # Python-level work, holding the GIL
        out = 255 - out
    return out


def build():
    return A.Compose([A.HorizontalFlip(p=0.5), A.Lambda(image=_invert, p=1.0)])


def not_a_compose():
    return [A.HorizontalFlip(p=1.0)]
'''


def _config(tmp_path: Path, pipeline: object, **changes: object) -> Path:
    data = {
        "name": "p",
        "kind": "strong",
        "images": {"count": 2, "size": [96, 64]},
        "augmentations_per_image": 2,
        "strategies": ["P_1"],
        "saving": [False],
        "workers": [2],
        "pipeline": pipeline,
        **changes,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _refused(tmp_path: Path, capsys, path: Path, words: list[str]) -> None:
    out = tmp_path / "out"
    assert main(["run", str(path), "--dry-run", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Fix:" in lines[0], err
    for word in words:
        assert word in lines[0], lines[0]
    assert not out.exists()


# ------------------------------------------------------------------------ the study's


def test_the_study_pipeline_ships_as_a_file_and_is_the_default(tmp_path):
    assert STUDY_FILE.is_file() and STUDY_FILE.parent.name == "pipelines"
    loaded = A.load(str(STUDY_FILE), data_format="yaml")
    assert [type(t).__name__ for t in loaded.transforms] == ["OneOf", "SomeOf", "OneOf"]
    config = load_config(_config(tmp_path, None))
    assert config.pipeline is None and pipelines.pipeline_of(None) == study_pipeline()
    explicit = load_config(_config(tmp_path, str(STUDY_FILE)))
    assert pipelines.pipeline_of(explicit.pipeline).text == study_pipeline().text


def test_reseeding_one_compose_gives_the_pixels_of_a_fresh_one():
    image = np.random.default_rng(0).integers(0, 255, (80, 120, 3), dtype=np.uint8)
    once = Pipeline(text=study_pipeline().text)
    for seed in range(20):
        fresh = seeded(study_pipeline(), seed)(image=image)["image"]
        reused = seeded(once, seed)(image=image)["image"]
        assert np.array_equal(fresh, reused)


# ------------------------------------------------------------------------ the user's


@pytest.fixture(scope="module")
def images() -> Path:
    return ensure_images(160, 80, N_IMAGES, "jpg")


def _digests(images: Path, stored: dict | None) -> dict[str, str]:
    config = tiny_config(pipeline=stored)
    cases = [("sequential", 1), ("P_1", 2), ("P_2", 2), ("P_T", 2), ("P_DYN", 3)]
    return {f"{s}-{w}": run_digest(s, w, images, config) for s, w in cases}


def test_a_serialised_pipeline_gives_one_digest_in_every_strategy(tmp_path, images):
    A.save(USER, str(tmp_path / "user.yaml"), data_format="yaml")
    stored = load_config(_config(tmp_path, "user.yaml")).pipeline
    assert stored["transform"]["transforms"][0]["__class_fullname__"] == "RandomResizedCrop"
    found = _digests(images, stored)
    assert len(set(found.values())) == 1, found
    assert found["sequential-1"] != _digests(images, None)["sequential-1"]


def test_the_same_dict_inline_is_the_same_pipeline(tmp_path):
    A.save(USER, str(tmp_path / "user.json"), data_format="json")
    from_file = load_config(_config(tmp_path, "user.json")).pipeline
    inline = load_config(_config(tmp_path, A.to_dict(USER))).pipeline
    assert json.dumps(from_file, sort_keys=True) == json.dumps(inline, sort_keys=True)
    assert pipelines.digest(from_file) == pipelines.digest(inline)


def test_module_function_with_a_lambda_runs_identically_in_threads_and_processes(
    tmp_path, images
):
    (tmp_path / "my_aug.py").write_text(LAMBDA_MODULE)
    stored = load_config(_config(tmp_path, "my_aug:build")).pipeline
    assert stored == {"function": "my_aug:build", "path": str(tmp_path.resolve())}
    found = _digests(images, stored)
    assert len(set(found.values())) == 1, found
    summary = pipelines.summary(stored)
    assert "my_aug:build" in summary["name"] and "_invert" in summary["module_text"]


def test_a_dry_run_names_the_pipeline(tmp_path, capsys):
    A.save(USER, str(tmp_path / "user.yaml"), data_format="yaml")
    assert main(["run", str(_config(tmp_path, "user.yaml")), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Pipeline: a serialised Compose of RandomResizedCrop, HorizontalFlip, ColorJitter" in out


# ------------------------------------------------------------------------ bad input


def _pipeline_file(tmp_path: Path, text: str) -> str:
    (tmp_path / "pipe.yaml").write_text(text)
    return "pipe.yaml"


def _serialised(*transforms: dict) -> str:
    return yaml.safe_dump(
        {"__version__": A.__version__, "transform": {
            "__class_fullname__": "Compose", "p": 1.0, "transforms": list(transforms)}}
    )


BAD = [
    ("missing file", lambda d: "nope.yaml", ["nope.yaml", "does not exist"]),
    ("not yaml", lambda d: _pipeline_file(d, "transform: [unclosed"), ["not valid YAML"]),
    ("not albumentations", lambda d: _pipeline_file(d, "a: 1\n"), ["no transform"]),
    (
        "unknown transform",
        lambda d: _pipeline_file(d, _serialised({"__class_fullname__": "NoSuchBlur", "p": 1})),
        ["transform.transforms[0]", "NoSuchBlur", "spelling"],
    ),
    (
        "wrong arguments",
        lambda d: _pipeline_file(
            d, _serialised({"__class_fullname__": "GaussianBlur", "p": 1, "blur_limit": "x"})
        ),
        ["transform.transforms[0] (GaussianBlur)", "wrong arguments", "blur_limit"],
    ),
    (
        "no p",
        lambda d: _pipeline_file(d, _serialised({"__class_fullname__": "HorizontalFlip"})),
        ["transform.transforms[0] (HorizontalFlip)", "no p", "p=0.5", "p: 1.0"],
    ),
    (
        "lambda in a file",
        lambda d: _pipeline_file(d, _serialised({"__class_fullname__": "Lambda", "p": 1})),
        ["transform.transforms[0]", "Lambda", "module:function"],
    ),
    ("module missing", lambda d: "no_such_module:build", ["cannot import no_such_module"]),
]


@pytest.mark.parametrize(("make", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_pipeline_is_one_line_before_anything_runs(tmp_path, capsys, make, words):
    _refused(tmp_path, capsys, _config(tmp_path, make(tmp_path)), words)


def test_a_function_that_returns_no_compose_is_refused(tmp_path, capsys):
    (tmp_path / "my_aug.py").write_text(LAMBDA_MODULE)
    path = _config(tmp_path, "my_aug:not_a_compose")
    _refused(tmp_path, capsys, path, ["my_aug:not_a_compose()", "returned list", "A.Compose"])


def test_a_pipeline_that_fails_on_the_first_image_is_refused(tmp_path, capsys):
    crop = A.Compose([A.RandomCrop(height=500, width=500, p=1.0)])
    A.save(crop, str(tmp_path / "crop.yaml"), data_format="yaml")
    _refused(tmp_path, capsys, _config(tmp_path, "crop.yaml"), ["96x64", "fails on this image"])


def test_an_output_saving_cannot_hold_is_refused_naming_the_transform(tmp_path, capsys):
    normalised = A.Compose([A.HorizontalFlip(p=0.5), A.Normalize(p=1.0)])
    A.save(normalised, str(tmp_path / "norm.yaml"), data_format="yaml")
    path = _config(tmp_path, "norm.yaml", saving=[True])
    _refused(tmp_path, capsys, path, ["float32", "transform.transforms[1]", "save_as: npy"])
    ok = _config(tmp_path, "norm.yaml", saving=[True], images={
        "count": 2, "size": [96, 64], "save_as": "npy"})
    assert main(["run", str(ok), "--dry-run"]) == 0


def test_errors_are_harness_errors_with_the_file_named(tmp_path):
    with pytest.raises(HarnessError) as info:
        pipelines.stored_form(3, tmp_path / "c.yaml")
    assert info.value.where == str(tmp_path / "c.yaml")
