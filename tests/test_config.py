"""Config validation: good configs load; every bad one is a one-line HarnessError (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from _optional import require_module

from harness.cli import main
from harness.config import Config, load_config, validate_config
from harness.errors import HarnessError
from harness.migrations import FORMAT_VERSION, migrate_meta
from harness.rundir import folders
from harness.rundir.meta import run_meta
from harness.sweep_rules import Order, Race, Repeats

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))

STRONG = {
    "name": "tiny_strong",
    "kind": "strong",
    "images": {"count": 2, "size": [160, 80], "format": "jpg"},
    "augmentations_per_image": 3,
    "strategies": ["P_1", "P_2", "P_Q"],
    "saving": [True, False],
    "workers": [1, 2],
    "repeats": 1,
    "warmup": 0,
}
WEAK = {
    "name": "tiny_weak",
    "kind": "weak",
    "images": {"count": 2, "size": [80, 80], "format": "jpg"},
    "augmentations_per_image": 3,
    "points": [{"workers": 2, "size": [160, 80]}],
    "repeats": 1,
    "warmup": 0,
}


def write(tmp_path: Path, data: object, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def with_(base: dict, **changes: object) -> dict:
    """A copy of base with top-level keys changed; a value of None removes the key."""
    out = {k: v for k, v in base.items() if k not in changes}
    out.update({k: v for k, v in changes.items() if v is not None})
    return out


def strong_images(**changes: object) -> dict:
    return with_(STRONG, images={**STRONG["images"], **changes})


# ---------------------------------------------------------------- good configs


def test_valid_strong_config_loads(tmp_path):
    config = load_config(write(tmp_path, STRONG))
    assert isinstance(config, Config)
    assert config.kind == "strong"
    assert config.sweep == [(1, (160, 80)), (2, (160, 80))]
    assert config.base_size == (160, 80)
    assert config.saving == [True, False]
    assert config.repeats == 1 and config.warmup == 0


def test_valid_weak_config_loads(tmp_path):
    config = load_config(write(tmp_path, WEAK))
    assert config.kind == "weak"
    assert config.sweep == [(2, (160, 80))]
    assert config.base_size == (80, 80)
    assert config.workers is None


def test_defaults_fill_in(tmp_path):
    config = load_config(write(tmp_path, {"name": "n", "kind": "strong", "workers": [2]}))
    assert config.images.count == 10
    assert config.base_size == (2000, 1000)
    assert config.augmentations_per_image == 100
    assert config.strategies == ["P_1", "P_2", "P_Q"]
    assert config.start_method == "fork"
    assert config.cell_timeout_s is None
    assert config.order is Order.ROUNDS and config.order.paired
    assert config.repeats == Repeats(min=3, max=20, ci=0.03)  # the quick configs'
    quick = shipped("quick_strong")
    assert config.repeats == quick.repeats and config.order == quick.order
    assert config.target == quick.target


def shipped(name: str) -> Config:
    """A shipped config validated, without the registry (race.yaml needs the torch extra)."""
    path = CONFIG_DIR / f"{name}.yaml"
    return validate_config(yaml.safe_load(path.read_text()), path)


def test_a_race_without_repeats_gets_the_races_and_sequential_stays_available(tmp_path):
    base = {"name": "n", "kind": "strong", "workers": [2]}
    race = load_config(write(tmp_path, {**base, "order": "race"}))
    assert race.repeats == shipped("race").repeats
    assert race.order.raced and race.order.paired and race.race_rules == Race()
    sequential = load_config(write(tmp_path, {**base, "order": "sequential"}))
    assert not sequential.order.paired and not sequential.order.child_per_run
    assert sequential.model_dump(mode="json")["order"] == "sequential"


def test_each_order_says_what_it_implies():
    implied = {o: (o.paired, o.child_per_run, o.raced) for o in Order}
    assert implied == {
        Order.SEQUENTIAL: (False, False, False),
        Order.INTERLEAVED: (False, True, False),
        Order.ROUNDS: (True, True, False),
        Order.RACE: (True, True, True),
    }


def test_input_dir_with_images_loads(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    (images / "a.png").write_bytes(b"not really a png, only the suffix is checked")
    config = load_config(write(tmp_path, strong_images(input_dir=str(images))))
    assert config.images.input_dir == images


def test_shipped_configs_exist():
    names = {p.name for p in CONFIGS}
    assert {
        "quick_strong.yaml",
        "quick_weak.yaml",
        "strong_scaling.yaml",
        "weak_scaling.yaml",
    } <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_loads(path):
    if "P_TORCH" in path.read_text():  # refused without the torch extra, by design
        require_module("torch", "make install EXTRAS=torch")
    config = load_config(path)
    assert config.name == path.stem
    assert config.sweep


# ---------------------------------------------------------------- bad configs

# (id, config data or raw YAML text, the key the error line must name, words the line must contain)
BAD = [
    ("unknown-top-key", with_(STRONG, colour="red"), "colour", ["unknown key"]),
    ("unknown-nested-key", strong_images(colour="red"), "images.colour", ["unknown key"]),
    ("workers-not-int", with_(STRONG, workers=["a"]), "workers.0", ["integer"]),
    ("saving-string", with_(STRONG, saving="yes"), "saving", ["list"]),
    ("saving-list-of-strings", with_(STRONG, saving=["maybe"]), "saving.0", ["boolean"]),
    ("repeats-float", with_(STRONG, repeats=1.5), "repeats", ["integer"]),
    ("repeats-zero", with_(STRONG, repeats=0), "repeats", ["greater than 0"]),
    ("warmup-negative", with_(STRONG, warmup=-1), "warmup", ["greater than or equal to 0"]),
    ("workers-empty", with_(STRONG, workers=[]), "workers", ["at least one"]),
    ("workers-missing", with_(STRONG, workers=None), "workers", ["at least one"]),
    ("points-empty", with_(WEAK, points=[]), "points", ["at least one"]),
    ("workers-zero", with_(STRONG, workers=[0]), "workers.0", ["greater than 0"]),
    ("workers-negative", with_(STRONG, workers=[1, -2]), "workers.1", ["greater than 0"]),
    (
        "point-workers-zero",
        with_(WEAK, points=[{"workers": 0, "size": [160, 80]}]),
        "points.0.workers",
        ["greater than 0"],
    ),
    ("size-zero", strong_images(size=[0, 100]), "images.size.0", ["greater than 0"]),
    ("size-three-entries", strong_images(size=[160, 80, 3]), "images.size", ["at most 2"]),
    ("size-one-entry", strong_images(size=[160]), "images.size", ["at least 2"]),
    ("bad-format", strong_images(format="gif"), "images.format", ["jpg", "png"]),
    (
        "unknown-strategy",
        with_(STRONG, strategies=["P_1", "P_9"]),
        "strategies",
        ["unknown strategy 'P_9'"],
    ),
    (
        "sequential-as-strategy",
        with_(STRONG, strategies=["sequential"]),
        "strategies",
        ["unknown strategy"],
    ),
    ("strategy-twice", with_(STRONG, strategies=["P_1", "P_1"]), "strategies", ["twice"]),
    ("name-with-slash", with_(STRONG, name="a/b"), "name", ["pattern"]),
    ("name-with-dotdot", with_(STRONG, name="a..b"), "name", ["'..'"]),
    ("name-dotdot-only", with_(STRONG, name="..x"), "name", []),
    ("unknown-kind", with_(STRONG, kind="medium"), "kind", ["strong", "weak"]),
    ("weak-with-workers", with_(WEAK, points=None, workers=[2]), "workers", ["kind: strong"]),
    (
        "strong-with-points",
        with_(STRONG, points=[{"workers": 2, "size": [160, 80]}]),
        "points",
        ["kind: weak"],
    ),
    ("weak-with-input-dir", with_(WEAK, images={"input_dir": "/"}), "input_dir", ["kind: strong"]),
    ("cell-timeout-zero", with_(STRONG, cell_timeout_s=0), "cell_timeout_s", ["greater than 0"]),
    ("start-method", with_(STRONG, start_method="thread"), "start_method", ["fork"]),
    (
        "options-for-a-strategy-not-run",
        with_(STRONG, options={"P_DYN": {}}),
        "options.P_DYN",
        ["does not run"],
    ),
    (
        "options-unknown-key",
        with_(STRONG, options={"P_1": {"chunks": 3}}),
        "options.P_1.chunks",
        ["Extra inputs"],
    ),
    (
        "options-bad-value",
        with_(STRONG, options={"P_2": {"placement": "far"}}),
        "options.P_2.placement",
        ["'none', 'close' or 'spread'"],
    ),
    (
        "env-bad-name",
        with_(STRONG, env={"NOT A NAME": "1"}),
        "env",
        ["should match pattern"],
    ),
    (
        "options-batch-zero",
        with_(STRONG, options={"P_2": {"batch": 0}}),
        "options.P_2.batch",
        ["'own', 'auto' or a whole number >= 1"],
    ),
    (
        "options-batch-where-none",
        with_(STRONG, options={"P_Q": {"batch": 4}}),
        "options.P_Q.batch",
        ["not permitted"],
    ),
    (
        "plugin-missing",
        with_(STRONG, plugins=["no_such_plugin_module"]),
        "plugins",
        ["cannot import"],
    ),
    ("plugin-file-missing", with_(STRONG, plugins=["nowhere.py"]), "plugins", ["no such file"]),
    (
        "slicing-last-sequential",
        with_(STRONG, slicing_last=True, order="sequential"),
        "slicing_last",
        ["order: rounds or race"],
    ),
]


def _bad_path(tmp_path: Path, data: object) -> Path:
    return write(tmp_path, data, "bad.yaml")


def _assert_line(line: str, path: Path, key: str, words: list[str]) -> None:
    assert "\n" not in line
    assert line.startswith("error: ")
    assert str(path) in line
    assert key in line
    assert "Fix:" in line
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"


@pytest.mark.parametrize(("data", "key", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_raises_harness_error(tmp_path, data, key, words):
    path = _bad_path(tmp_path, data)
    with pytest.raises(HarnessError) as info:
        load_config(path)
    err = info.value
    assert err.exit_code == 2
    _assert_line(err.line(), path, key, words)


@pytest.mark.parametrize(("data", "key", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_cli_exit_2_one_line(tmp_path, capsys, data, key, words):
    path = _bad_path(tmp_path, data)
    out_dir = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out_dir)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    _assert_line(lines[0], path, key, words)
    assert not out_dir.exists()


def test_field_error_key_is_the_dotted_path(tmp_path):
    """The exception's .key is the dotted location, not just a substring of the message."""
    with pytest.raises(HarnessError) as info:
        load_config(_bad_path(tmp_path, strong_images(colour="red")))
    assert info.value.key == "images.colour"
    assert info.value.where == str(tmp_path / "bad.yaml")


# ------------------------------------------------- file-level problems (no key to name)


def _file_error(tmp_path: Path, capsys, path: Path, words: list[str]) -> None:
    with pytest.raises(HarnessError) as info:
        load_config(path)
    line = info.value.line()
    assert "\n" not in line and line.startswith("error: ") and str(path) in line and "Fix:" in line
    for word in words:
        assert word in line
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert captured.err.strip().splitlines() == [line]
    assert not (tmp_path / "out").exists()


def test_missing_file(tmp_path, capsys):
    _file_error(tmp_path, capsys, tmp_path / "nope.yaml", ["no such config file"])


def test_config_is_a_folder(tmp_path, capsys):
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    _file_error(tmp_path, capsys, folder, ["no such config file"])


def test_malformed_yaml_names_the_line(tmp_path, capsys):
    path = write(tmp_path, "name: x\nkind: strong\nworkers: [1, 2\nrepeats: 1\n", "broken.yaml")
    _file_error(tmp_path, capsys, path, ["malformed YAML"])
    with pytest.raises(HarnessError) as info:
        load_config(path)
    assert info.value.where.startswith(f"{path}:")
    assert info.value.where.rsplit(":", 1)[1].isdigit()


@pytest.mark.parametrize(
    "text", ["- a\n- b\n", "just a string\n", "42\n", ""], ids=["list", "string", "number", "empty"]
)
def test_top_level_not_a_mapping(tmp_path, capsys, text):
    path = write(tmp_path, text, "notmap.yaml")
    _file_error(tmp_path, capsys, path, ["not a YAML mapping"])


def test_input_dir_missing(tmp_path, capsys):
    path = _bad_path(tmp_path, strong_images(input_dir=str(tmp_path / "no_such_folder")))
    _file_error(tmp_path, capsys, path, ["images.input_dir", "does not exist"])


def test_input_dir_without_images(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    (empty / "sub.jpg").mkdir()  # a folder named like an image is not an image
    path = _bad_path(tmp_path, strong_images(input_dir=str(empty)))
    _file_error(tmp_path, capsys, path, ["images.input_dir", "holds no images"])


# ---------------------------------------------------------------- dry run


def test_a_config_without_order_or_repeats_plans_paired_rounds(tmp_path, capsys):
    path = write(tmp_path, with_(STRONG, repeats=None))
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "(strong scaling, in paired rounds)" in plan
    assert "within +-3% (3 to 20 per cell" in plan
    assert "before each (cell, repeat)" in plan


def test_dry_run_prints_plan_and_creates_nothing(tmp_path, capsys):
    path = write(tmp_path, STRONG)
    out_dir = tmp_path / "results" / "run"
    assert main(["run", str(path), "--out", str(out_dir), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert not out_dir.exists()
    assert not (tmp_path / "results").exists()
    assert "Plan for tiny_strong" in captured.out
    assert "Estimated duration" in captured.out
    # 2 modes x (baseline + 3 strategies x 2 worker counts) = 14 cells; P_Q skips W=1 and no saving.
    assert captured.out.count("  skip ") == 3
    assert captured.out.count("  run  ") == 11


def test_duplicate_key_is_an_error(tmp_path, capsys):
    path = tmp_path / "dup.yaml"
    path.write_text("name: a\nkind: strong\nworkers: [1]\nname: b\n")
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert "duplicate key 'name'" in err and f"{path}:4" in err and "\n" not in err


def test_whole_config_checks_name_their_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: a\nkind: strong\n")
    with pytest.raises(HarnessError) as err:
        load_config(path)
    assert err.value.key == "workers"


# ---------------------------------------------------------------- strategy options


def test_placement_reaches_every_strategy_with_a_placement_option(tmp_path):
    config = load_config(
        write(
            tmp_path,
            with_(
                STRONG,
                strategies=["P_1", "P_T"],
                placement="spread",
                options={"P_1": {"placement": "close"}},
            ),
        )
    )
    assert config.options_for("P_1") == {"placement": "close", "batch": "own"}  # its own wins
    assert config.options_for("P_T") == {"batch": "own"}  # threads of one process: no placement
    assert config.options_for("sequential") == {}


def test_the_old_dask_key_still_works_with_a_deprecation_note(tmp_path, capsys):
    data = with_(
        STRONG,
        strategies=["P_1", "P_DASK"],
        dask={"scheduler": "tcp://h:8786", "data": "shared_path"},
    )
    config = load_config(write(tmp_path, data))
    assert config.options_for("P_DASK") == {
        "scheduler": "tcp://h:8786",
        "data": "shared_path",
        "batch": "own",
    }
    assert "'dask:' is deprecated; write it as `options: {P_DASK: …}`" in capsys.readouterr().err


def test_the_old_dask_key_without_p_dask_is_dropped(tmp_path):
    config = load_config(
        write(tmp_path, with_(STRONG, dask={"scheduler": None, "data": "scatter"}))
    )
    assert config.options == {}


def test_the_old_dask_key_and_options_together_are_refused(tmp_path):
    data = with_(STRONG, strategies=["P_DASK"], dask={}, options={"P_DASK": {}})
    with pytest.raises(HarnessError, match="given twice"):
        load_config(write(tmp_path, data))


# ---------------------------------------------------------------- stored configs


def stored(version: int, **config: object):
    """A meta.json's config of this format, read back as the report and a resume read it."""
    data = {"name": "n", "kind": "strong", "workers": [2], **config}
    return run_meta(migrate_meta({"format_version": version, "config": data}, "meta.json")).config


def test_a_stored_config_keeps_the_defaults_it_ran_under():
    """A config stored before paired rounds were the default, without `order` or `repeats`, ran
    in sequential order, 3 runs a cell; its precision targets judged futility from the interval
    alone. One stored now means what it says."""
    old = stored(6)
    assert old.order is Order.SEQUENTIAL and old.repeats == 3
    target = {"min": 3, "max": 9, "ci": 0.03}
    assert stored(6, order="rounds", repeats=target).target.futility == "interval"
    new = stored(FORMAT_VERSION)
    assert new.order is Order.ROUNDS and new.repeats == Repeats(min=3, max=20, ci=0.03)
    assert new.target.futility == "robust"


def test_a_resume_may_not_move_a_run_into_or_out_of_paired_rounds(tmp_path):
    base = {"name": "n", "kind": "strong", "workers": [2]}
    old = migrate_meta({"format_version": 6, "config": base}, "meta.json")  # as read_meta does
    now = load_config(write(tmp_path, base))  # paired rounds, the default now
    with pytest.raises(HarnessError, match="order: sequential") as err:
        folders.check_resumable(old, now, {}, {}, tmp_path)
    assert err.value.exit_code == 2
    interleaved = load_config(write(tmp_path, {**base, "order": "interleaved", "repeats": 3}))
    folders.check_resumable(old, interleaved, {}, {}, tmp_path)  # unpaired both: may change
