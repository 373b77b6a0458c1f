"""A strategy can live outside this repo (plugins), and one file is all a strategy costs.
Every strategy is checked against the contract when it is discovered."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml
from _tiny import AUGMENTATIONS

from experiments.contract import ContractError, Strategy, check
from harness.cli import main

ROOT = Path(__file__).resolve().parent.parent

# A throwaway strategy with an option of its own and a per-cell session: tasks in reverse
# order, optionally, from a list of paths the session made once per cell.
PLUGIN = textwrap.dedent("""
    import contextlib
    from pydantic import BaseModel, ConfigDict
    from experiments.contract import Strategy
    from experiments.workload import Phases, list_images, read_augment_save

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        reverse: bool = False

    @contextlib.contextmanager
    def session(job, workers, ctx):
        yield {"paths": list_images(job.input_dir)}

    def run(job, workers, ctx, session):
        paths = session["paths"]
        tasks = [(p, i, k) for i, p in enumerate(paths) for k in range(job.augmentations)]
        phases = Phases()
        for path, i, k in reversed(tasks) if Options(**job.options).reverse else tasks:
            phases.add(read_augment_save(path, job, i, k))
        return phases

    STRATEGY = Strategy(name="REVERSED", summary="sequential, backwards", run=run,
                        options=Options, session=session, in_process=True)
""")


@pytest.fixture
def plugin_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package outside the repo, importable by name here and in every child process."""
    package = tmp_path / "site" / "my_plugins"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "reversed_strategy.py").write_text(PLUGIN)
    monkeypatch.setenv("PYTHONPATH", str(package.parent))
    monkeypatch.syspath_prepend(str(package.parent))
    return "my_plugins.reversed_strategy"


def dry_run_error(tmp_path: Path, config: dict, capsys: pytest.CaptureFixture) -> str:
    """The one line a --dry-run of this config prints, after checking it exits 2."""
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    return err


@pytest.mark.slow
def test_a_plugin_runs_through_the_runner_and_verify(tmp_path, images, plugin_package, capsys):
    config = {
        "name": "plugin",
        "kind": "strong",
        "images": {"input_dir": str(images)},
        "augmentations_per_image": AUGMENTATIONS,
        "plugins": [plugin_package],
        "strategies": ["REVERSED", "P_2"],
        "options": {"REVERSED": {"reverse": True}},
        "saving": [True],
        "workers": [1, 2],
        "repeats": 1,
        "warmup": 0,
    }
    path = tmp_path / "plugin.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["verify", str(path)]) == 0
    assert "REVERSED     W=2" in capsys.readouterr().out
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 0
    runs = pd.read_parquet(tmp_path / "run" / "runs.parquet")
    mine = runs[runs["strategy"] == "REVERSED"]
    assert list(mine["status"]) == ["ok", "ok"]
    assert mine["t_session_startup_s"].notna().all()
    spec = next((tmp_path / "run" / "cells").glob("REVERSED-*.spec.json")).read_text()
    assert plugin_package in spec and '"reverse": true' in spec
    assert "REVERSED" in (tmp_path / "run" / "report.md").read_text()


def test_a_plugin_option_is_validated_by_its_own_model(tmp_path, images, plugin_package, capsys):
    config = {
        "name": "p",
        "kind": "strong",
        "plugins": [plugin_package],
        "strategies": ["REVERSED"],
        "options": {"REVERSED": {"reverse": "sideways"}},
        "workers": [1],
    }
    err = dry_run_error(tmp_path, config, capsys)
    assert "key 'options.REVERSED.reverse'" in err and "Fix:" in err


def test_a_plugin_may_be_a_file_next_to_the_config(tmp_path, capsys):
    (tmp_path / "mine.py").write_text(PLUGIN.replace('"REVERSED"', '"FROM_FILE"'))
    config = {
        "name": "p",
        "kind": "strong",
        "plugins": ["mine.py"],
        "strategies": ["FROM_FILE"],
        "workers": [1],
        "images": {"count": 1, "size": [64, 32]},
        "augmentations_per_image": 1,
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path), "--dry-run"]) == 0
    assert "FROM_FILE-w1-save-64x32" in capsys.readouterr().out


COPY_CHECK = """
import sys
from experiments import strategies
from harness.config import Config
from harness.images import ensure_images
from harness.measure.verify import run_digest
assert strategies.get("P_2COPY").summary
config = Config.model_validate({"name": "c", "kind": "strong", "workers": [2],
    "strategies": ["P_2COPY"], "augmentations_per_image": 2})
images = ensure_images(96, 48, 2, "jpg", root=__import__("pathlib").Path(sys.argv[1]))
assert run_digest("P_2COPY", 2, images, config) == run_digest("sequential", 1, images, config)
print("copy ok")
"""


def test_copying_a_strategy_module_under_a_new_name_adds_one(tmp_path):
    for package in ("experiments", "harness", "configs"):  # configs/: the study's pipeline
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    source = (ROOT / "experiments" / "strategies" / "p2.py").read_text()
    (tmp_path / "experiments" / "strategies" / "p2_copy.py").write_text(
        source.replace('"P_2"', '"P_2COPY"')
    )
    done = subprocess.run(
        [sys.executable, "-c", COPY_CHECK, str(tmp_path / "cache")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "copy ok" in done.stdout


def test_a_copy_that_keeps_the_old_name_is_refused(tmp_path):
    for package in ("experiments",):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(
        ROOT / "experiments" / "strategies" / "p2.py",
        tmp_path / "experiments" / "strategies" / "p2b.py",
    )
    done = subprocess.run(
        [sys.executable, "-c", "from experiments import strategies; strategies.registry()"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "experiments.strategies.p2b: strategy name 'P_2' is already taken" in done.stderr


def _run(job, workers, ctx):  # noqa: ANN001, ANN202
    return None


@pytest.mark.parametrize(
    ("strategy", "piece"),
    [
        (None, "STRATEGY must be an experiments.contract.Strategy, found nothing"),
        ({"name": "X"}, "found dict"),
        (Strategy("bad name", "s", _run), "name 'bad name'"),
        (Strategy("X", "", _run), "summary"),
        (Strategy("X", "s", "not callable"), "run must be callable"),
        (Strategy("X", "s", _run, min_workers=0), "min_workers"),
        (Strategy("X", "s", _run, options=dict), "options must be a pydantic BaseModel"),
        (Strategy("X", "s", _run, phases={"Queue Put": "x"}), "phase 'Queue Put'"),
        (Strategy("X", "s", _run, phases={"startup": "x"}), "phase 'startup'"),
        (Strategy("X", "s", _run, session=42), "session must be callable or None"),
    ],
)
def test_a_module_that_breaks_the_contract_is_named_with_the_missing_piece(strategy, piece):
    with pytest.raises(ContractError) as err:
        check(strategy, "some_plugin")
    assert str(err.value).startswith("some_plugin: ") and piece in str(err.value)


def test_a_broken_plugin_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "broken.py").write_text("NAME = 'OLD_STYLE'\n")
    config = {
        "name": "p",
        "kind": "strong",
        "plugins": ["broken.py"],
        "strategies": ["P_1"],
        "workers": [1],
    }
    err = dry_run_error(tmp_path, config, capsys)
    assert "key 'plugins'" in err and "broken: STRATEGY must be" in err
