"""The per-transform profile (harness/measure/profile.py, docs/PROFILE.md): calls counted as the
seeds fire them, profile.json's round trip and refusal, the GIL's bound and who it names in the
report and `predict`; and, on a machine quiet enough to see it, a GIL-heavy Lambda ranked above
a cv2 transform."""

from __future__ import annotations

import argparse
import json
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from experiments.pipeline import Pipeline
from harness.analysis import gil
from harness.analysis.results import load_results
from harness.cli import main
from harness.commands import run as run_command
from harness.config import validate_config
from harness.errors import HarnessError
from harness.measure import profile as measure
from harness.plan.inputs import Inputs
from harness.report import markdown, sections
from harness.rundir import profile_file
from harness.rundir.profile_file import OWN, Profile, TransformProfile

MODULE = """
    import albumentations as A


    def busy(image, **params):
        acc = 0
        for _ in range(LOOPS):
            for value in image[::2, ::2].ravel().tolist():
                acc = (acc * 31 + value) & 0xFFFF
        return image


    def tiny():
        return A.Compose([
            A.HorizontalFlip(p=0.5),
            A.Lambda(image=busy, name="busy", p=1.0),
            A.OneOf([A.Blur(p=1.0), A.VerticalFlip(p=1.0)], p=0.7),
        ])


    def fails(image, **params):
        raise ValueError("no such row")


    def failing():
        return A.Compose([A.HorizontalFlip(p=1.0), A.Lambda(image=fails, p=1.0)])


    def heavy():
        return A.Compose([
            A.Lambda(image=busy, name="busy", p=1.0),
            A.GaussianBlur(blur_limit=(15, 15), sigma_limit=(3.0, 3.0), p=1.0),
        ])
"""


def _pipeline(tmp_path: Path, function: str, loops: int) -> Pipeline:
    name = f"profile_pipelines_{loops}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE).replace("LOOPS", str(loops)))
    return Pipeline(function=f"{name}:{function}", path=str(tmp_path))


def _row(name: str, share: float, gil_share: float, calls: int = 10) -> TransformProfile:
    return TransformProfile(
        name=name,
        calls=calls,
        alone_ms=1.0,
        loaded_ms=1.1,
        threads_ms=1.5,
        off_cpu=0.2,
        gil=gil_share,
        share=share,
    )


def _profile(stretch: float = 1.05) -> Profile:
    """A pipeline that holds the GIL 30% of a task: its Lambda 24% (of 40%), the Compose 6%."""
    return Profile(
        workers=2,
        tasks=10,
        image_size=[64, 48],
        alone_task_ms=2.0,
        loaded_task_ms=2.1,
        threads_task_ms=2.6,
        machine_stretch=stretch,
        transforms=[
            _row("GaussianBlur", 0.54, 0.0),
            _row("Lambda(busy)", 0.40, 0.6),
            _row(OWN, 0.06, 1.0),
        ],
        measured_at="2026-01-01T00:00:00+00:00",
    )


def test_calls_are_counted_as_the_seeds_fire_them(tmp_path, monkeypatch):
    monkeypatch.setattr(measure, "ISOLATED_CALLS", (2, 4))
    pipeline = _pipeline(tmp_path, "tiny", 1)
    images = [np.full((48, 64, 3), v, np.uint8) for v in (40, 200)]
    found = measure.profile_pipeline(pipeline, images, 5, 3, 2, n_images=10)
    compose = pipeline.build()
    compose.save_applied_params = True
    fired: Counter[str] = Counter()
    for i in range(10):
        for k in range(5):
            compose.set_random_seed(3 + i * 5 + k)
            fired.update(n for n, _ in compose(image=images[i % 2])["applied_transforms"])
    rows = {t.name: t for t in found.transforms}
    assert found.tasks == 50 and list(rows) == [
        "HorizontalFlip",
        "Lambda(busy)",
        "Blur",
        "VerticalFlip",
        OWN,
    ]
    assert 0 < rows["HorizontalFlip"].calls < 50 and rows[OWN].calls == 50
    for name in ("HorizontalFlip", "Blur", "VerticalFlip"):
        assert rows[name].calls == fired[name]
    assert rows["Lambda(busy)"].calls == 50
    assert sum(t.share for t in found.transforms) == pytest.approx(1.0, abs=0.02)
    assert all(0.0 <= t.gil <= 1.0 and t.loaded_ms and t.threads_ms for t in rows.values())


def test_a_pipeline_that_raises_is_one_runtime_error(tmp_path):
    pipeline = _pipeline(tmp_path, "failing", 1)
    with pytest.raises(RuntimeError, match="the pipeline failed: ValueError: no such row"):
        measure.profile_pipeline(pipeline, [np.zeros((48, 64, 3), np.uint8)], 1, 0, 2)


def test_profile_json_round_trips_and_refuses_damage(tmp_path):
    assert profile_file.read(tmp_path) is None
    profile_file.write(tmp_path, _profile())
    assert profile_file.read(tmp_path) == _profile()
    (tmp_path / profile_file.FILE).write_text('{"format_version": 1, "workers": ')
    with pytest.raises(HarnessError) as err:
        profile_file.read(tmp_path)
    assert "\n" not in err.value.line() and "profile.json" in err.value.line()
    (tmp_path / profile_file.FILE).write_text(json.dumps({"format_version": 99}))
    with pytest.raises(HarnessError, match="newer"):
        profile_file.read(tmp_path)


def test_the_gil_share_bounds_threads_like_amdahl():
    found = _profile()
    assert gil.gil_share(found) == pytest.approx(0.30)
    assert gil.threads_bound(0.3, 10**6) == pytest.approx(1 / 0.3, rel=1e-4)
    assert gil.threads_bound(0.3, 2) == pytest.approx(1 / 0.65)
    assert gil.threads_bound(0.0, 8) == pytest.approx(8.0)
    assert gil.bound_line(found, 64) == (
        "P_T at W = 64: at most 3.2x (the pipeline holds the GIL 30% of a task: "
        f"Lambda(busy) 24%, {OWN} 6%)"
    )
    assert gil.dominant(found).name == "GaussianBlur"
    assert gil.limiting(found).name == "Lambda(busy)"
    assert not gil.busy(found) and gil.busy(_profile(stretch=2.0))


def test_the_report_has_the_section_only_with_profile_json(synthetic_run):
    run = synthetic_run()
    assert "profile" not in [s.id for s in sections.build(load_results(run))]
    profile_file.write(run, _profile())
    found = {s.id: s for s in sections.build(load_results(run))}
    text = markdown.render("t", [found["profile"]])
    assert "**GaussianBlur** dominates the time" in text
    assert "**Lambda(busy)** limits threads" in text
    assert "| 64 | 3.2x |" in text
    assert "2 threads ran 1.54x one thread's rate" in text and "2 processes 1.90x." in text


def test_predict_bounds_threads_from_the_profile(synthetic_run, capsys):
    run = synthetic_run()
    assert main(["predict", str(run)]) == 2  # no traces, no profile: nothing to say
    profile_file.write(run, _profile(stretch=2.0))
    capsys.readouterr()
    assert main(["predict", str(run), "--workers", "4", "64"]) == 0
    out = capsys.readouterr().out
    assert "P_T at W = 4: at most 2.1x" in out and "P_T at W = 64: at most 3.2x" in out
    assert "Lambda(busy) 24%" in out and "busy while profiling" in out


def test_the_profile_switch_is_a_strict_bool(tmp_path):
    data = {"name": "x", "kind": "strong", "workers": [1, 2]}
    assert validate_config(data, tmp_path / "c.yaml").profile is True
    assert validate_config({**data, "profile": False}, tmp_path / "c.yaml").profile is False
    with pytest.raises(HarnessError, match="profile"):
        validate_config({**data, "profile": "yes"}, tmp_path / "c.yaml")


def test_run_profiles_at_two_workers_or_more_unless_turned_off(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(
        run_command, "profile_pipeline", lambda *a, **k: calls.append(a) or _profile()
    )
    data = {"name": "x", "kind": "strong", "workers": [1, 4], "images": {"size": [64, 48]}}
    config = validate_config(data, tmp_path / "c.yaml")
    args, found = argparse.Namespace(resume=None), Inputs(10, (64, 48))
    assert run_command._profile(args, config, found, 1) is None  # one usable core: W = 1
    off = validate_config({**data, "profile": False}, tmp_path / "c.yaml")
    assert run_command._profile(args, off, found, 2) is None and not calls
    assert run_command._profile(args, config, found, 2) == _profile()
    assert calls[0][4] == 2  # W: the most workers, capped at the usable cores
    assert capsys.readouterr().out.startswith("Profile (10 tasks, 2.00 ms each, W = 2)")


@pytest.mark.slow  # real threads and processes; skipped where the machine is too busy to tell
def test_a_python_lambda_holds_the_gil_and_a_cv2_blur_does_not(tmp_path, monkeypatch):
    monkeypatch.setattr(measure, "ISOLATED_S", 0.25)  # longer isolated runs: less noise
    monkeypatch.setattr(measure, "ISOLATED_CALLS", (4, 1000))
    pipeline = _pipeline(tmp_path, "heavy", 3)
    image = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    found = measure.profile_pipeline(pipeline, [image], 1, 0, 2, n_images=40)
    if gil.busy(found):
        pytest.skip(f"the machine is busy (stretch {found.machine_stretch}): the GIL is hidden")
    rows = {t.name: t for t in found.transforms}
    assert rows["Lambda(busy)"].gil > rows["GaussianBlur"].gil + 0.3
    assert gil.limiting(found).name == "Lambda(busy)"
    assert "Lambda(busy)" in gil.bound_line(found, 64)
