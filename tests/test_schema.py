"""The result schema: the typed spec, the column registry (and the column tables of
docs/REPORT.md made from it), and the run folder's format version, migrated on read or refused."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from harness import migrations, schema
from harness.cli import main
from harness.errors import HarnessError
from harness.rundir import store

ROOT = Path(__file__).resolve().parent.parent
# real run folders cut down to a few cells, one per order and format the harness has stored
STORED = sorted(p.parent for p in (ROOT / "tests" / "fixtures" / "runs").glob("*/*/meta.json"))
FORMAT_1 = ROOT / "tests" / "fixtures" / "runs" / "quick_strong" / "format1"


def v1_meta(**config: object) -> dict:
    return {
        "format_version": 1,
        "config": {"name": "x", "dask": {"scheduler": None, "data": "scatter"}, **config},
    }


def test_a_v1_meta_is_migrated_on_read():
    meta = migrations.migrate_meta(v1_meta(), "meta.json")
    assert meta["format_version"] == migrations.FORMAT_VERSION
    assert "dask" not in meta["config"]
    assert meta["config"]["options"] == {} and meta["config"]["plugins"] == []


def test_a_v1_dask_setting_moves_to_the_strategy_options():
    meta = migrations.migrate_meta(v1_meta(dask={"scheduler": "tcp://h:1", "data": "scatter"}), "m")
    assert meta["config"]["options"] == {"P_DASK": {"scheduler": "tcp://h:1", "data": "scatter"}}


@pytest.mark.parametrize("order", ["rounds", "race", "sequential"])
def test_a_v3_folder_keeps_the_paired_rules_it_was_measured_under(order):
    config = {"name": "x", "order": order, "repeats": {"min": 5, "max": 40, "ci": 0.02}}
    meta = migrations.migrate_meta({"format_version": 3, "config": config}, "meta.json")
    paired = order != "sequential"
    assert (meta["config"]["repeats"].get("futile_after") == 6) is paired
    assert ("race" in meta["config"]) is (order == "race")
    if order == "race":
        assert meta["config"]["race"]["settle_after"] is None
        assert meta["config"]["race"]["retie"] is True
        assert meta["config"]["race"]["carry"] == "tied"


def test_a_v4_race_keeps_asking_stage_2_to_tie_again():
    config = {"name": "x", "order": "race", "race": {"settle_after": 15}}
    meta = migrations.migrate_meta({"format_version": 4, "config": config}, "meta.json")
    assert meta["config"]["race"] == {"settle_after": 15, "retie": True, "carry": "tied"}


def test_a_v5_race_carries_every_tied_strategy_into_stage_2():
    config = {"name": "x", "order": "race", "race": {}}
    meta = migrations.migrate_meta({"format_version": 5, "config": config}, "meta.json")
    assert meta["config"]["race"] == {"carry": "tied"}


def test_meta_without_a_version_is_read_as_version_1():
    meta = v1_meta()
    del meta["format_version"]
    assert migrations.migrate_meta(meta, "m")["config"]["options"] == {}


@pytest.mark.parametrize("version", [migrations.FORMAT_VERSION + 1, 0, "2"])
def test_a_newer_or_unknown_version_is_refused(version):
    with pytest.raises(HarnessError, match="format_version") as err:
        migrations.migrate_meta({"format_version": version, "config": {}}, "run/meta.json")
    assert "run/meta.json" in err.value.line()


def test_report_on_a_future_run_folder_is_one_line_exit_2(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(STORED[0], run)
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(
        json.dumps({**meta, "format_version": migrations.FORMAT_VERSION + 1})
    )
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "newer augscale" in err and "Fix: upgrade" in err


def test_a_damaged_meta_is_one_line(tmp_path):
    (tmp_path / "meta.json").write_text('{"config": ')
    with pytest.raises(HarnessError, match="cannot read it"):
        store.read_meta(tmp_path)


@pytest.mark.parametrize("run", STORED, ids=[f"{p.parent.name}/{p.name}" for p in STORED])
def test_stored_runs_of_any_format_read_as_current(run):
    assert (
        json.loads((run / "meta.json").read_text()).get("format_version", 1)
        <= migrations.FORMAT_VERSION
    )
    assert store.read_meta(run)["format_version"] == migrations.FORMAT_VERSION


def test_some_stored_run_is_of_format_1():
    """At least one real run folder exercises the migration from format 1."""
    assert FORMAT_1 in STORED
    assert json.loads((FORMAT_1 / "meta.json").read_text())["format_version"] == 1


def test_a_format_1_folder_renders_its_report(tmp_path, capsys):
    """An old folder is migrated on load: `report` renders it whole, as today's code reads it."""
    run = shutil.copytree(FORMAT_1, tmp_path / "run")
    assert main(["report", str(run)]) == 0, capsys.readouterr().err
    assert (run / "tables" / "strong.csv").is_file() and (run / "report.md").is_file()
    assert json.loads((run / "meta.json").read_text())["format_version"] == 1  # read, not rewritten


@pytest.mark.parametrize("run", STORED, ids=[f"{p.parent.name}/{p.name}" for p in STORED])
def test_every_stored_column_is_in_the_registry(run):
    columns = set(store.load_runs(run).columns)
    extra_phases = {c for c in columns if re.fullmatch(r"t_[a-z_]+_s", c)}
    assert columns - extra_phases <= set(schema.RUN_COLUMNS)


def test_csv_columns_follow_the_registry():
    assert schema.CSV_COLUMNS == [c for c in schema.TABLE_COLUMNS if c != "ideal_s"]


@pytest.mark.parametrize(("marker", "text"), schema.readme_tables().items())
def test_the_report_docs_column_tables_are_the_registry(marker, text):
    page = (ROOT / "docs" / "REPORT.md").read_text()
    found = re.search(rf"<!-- columns:{marker} -->\n(.*?)\n<!-- /columns:{marker} -->", page, re.S)
    assert found, (
        f"docs/REPORT.md lacks the <!-- columns:{marker} --> block; "
        "paste `python -m harness.schema`"
    )
    assert found.group(1) == text, (
        "docs/REPORT.md column table is stale: paste the output of `python -m harness.schema`"
    )


def test_a_cell_spec_round_trips(tmp_path):
    job = schema.JobSpec(
        input_dir="in",
        out_dir="out",
        augmentations=2,
        seed=0,
        saving=True,
        ext="jpg",
        cv2_threads=1,
        options={"placement": "none"},
    )
    cell = schema.Cell("P_1", 2, True, 160, 80)
    spec = schema.CellSpec(
        cell=cell.key(), job=job, warmup=1, repeats=[0, 1], start_method="fork", results="r.jsonl"
    )
    spec.write(tmp_path / "s.json")
    back = schema.CellSpec.read(tmp_path / "s.json")
    assert back == spec and back.the_cell == cell
