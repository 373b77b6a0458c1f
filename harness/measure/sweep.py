"""The sweep's context: what every unit of one run shares, and the spec each child is given."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from harness.config import Config
from harness.measure.protocol import UnitFiles
from harness.pipelines import pipeline_of
from harness.plan.batches import resolved
from harness.plan.cells import Cell, Stored, Unit, plan_cells, planned_runs, runnable, time_slicing
from harness.plan.estimate import Costs, cell_seconds
from harness.plan.sweep_plan import Plan
from harness.rundir import store
from harness.schema import CellSpec, JobSpec
from harness.stats.precision import Target

MIN_TIMEOUT_S = 300.0
TIMEOUT_FACTOR = 10.0


@dataclass(frozen=True)
class Sweep:
    """What every cell of one run shares."""

    config: Config
    run_dir: Path
    input_dirs: dict[tuple[int, int], Path]  # image folder per (width, height)
    n_images: int
    costs: Costs
    cores: int  # usable cores: above them a cell is time-slicing
    target: Target | None = None  # the stop rule, `max` capped by a budget; None: the config's

    @property
    def rule(self) -> Target:
        return self.target or self.config.target

    def run_estimate(self, cell: Cell) -> float:
        return cell_seconds(
            cell, self.n_images, self.config.augmentations_per_image, self.costs, self.cores
        )

    def warmup_estimate(self, cell: Cell) -> float:
        return self.run_estimate(cell) * self.config.warmup_runs * self.config.warmup_tasks

    def unit_estimate(self, unit: Unit) -> float:
        """A unit's warm-ups and the runs it is expected to record."""
        expected = planned_runs(unit.cell, self.rule, self.cores, "expected")
        runs = max(1, min(len(unit.repeats), expected))
        return (
            self.costs.child_s
            + self.warmup_estimate(unit.cell)
            + self.run_estimate(unit.cell) * runs
        )

    def timeout(self, cell: Cell, repeats: int) -> float:
        if self.config.cell_timeout_s:
            return self.config.cell_timeout_s
        work = self.warmup_estimate(cell) + self.run_estimate(cell) * repeats
        return max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * work)

    def scratch(self, cell: Cell) -> Path:
        return (self.config.scratch_dir or self.run_dir / "scratch") / cell.id

    def stored(self) -> dict[str, Stored]:
        return stored_runs(self.run_dir)

    def plan(self) -> Plan:
        """The plan of what is left, with the runs stored so far."""
        cells = runnable(plan_cells(self.config))
        return Plan(
            self.config,
            cells,
            self.run_estimate,
            self.cores,
            self.rule,
            self.costs.child_s,
            self.stored(),
        )


def stored_runs(run_dir: Path) -> dict[str, Stored]:
    """Every cell's ok runs so far, from runs.parquet."""
    runs = store.load_runs(run_dir)
    if runs.empty:
        return {}
    ok = runs[runs["status"].eq("ok")]
    return {
        cell_id: Stored(tuple(g["wall_s"]), frozenset(g["repeat"].astype(int)))
        for cell_id, g in ok.groupby("cell_id", sort=False)
    }


def cell_spec(
    sweep: Sweep, unit: Unit, files: UnitFiles, prior: tuple[float, ...] = (), judged: bool = False
) -> CellSpec:
    cfg, cell = sweep.config, unit.cell
    job = JobSpec(
        input_dir=str(sweep.input_dirs[(cell.width, cell.height)]),
        out_dir=str(sweep.scratch(cell)),
        augmentations=cfg.augmentations_per_image,
        seed=cfg.seed,
        saving=cell.saving,
        ext=cfg.images.save_as or cfg.images.format,
        cv2_threads=cfg.cv2_threads,
        options=resolved(
            cfg.options_for(cell.strategy),
            cell,
            sweep.costs,
            sweep.n_images * cfg.augmentations_per_image,
        ),
        pipeline=asdict(pipeline_of(cfg.pipeline)),
    )
    rule = sweep.rule
    return CellSpec(
        cell=asdict(cell),
        job=job,
        warmup=cfg.warmup_runs,
        warmup_tasks=cfg.warmup_tasks,
        repeats=list(unit.repeats),
        start_method=cfg.start_method,
        results=str(files.results),
        plugins=list(cfg.plugins),
        target=[] if rule.fixed or unit.round is not None else [rule.min, rule.max, rule.ci],
        futility=rule.futility,
        prior=list(prior),
        slicing=time_slicing(cell, sweep.cores),
        stop_file=str(files.stop),
        judged=str(files.judged) if judged else "",
        **unit.where,
    )
