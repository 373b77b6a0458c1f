"""A loaded run folder: runs.parquet + meta.json, the scaling table, and every derived view the
report and its checks share (processes, oversubscription, phases, fits, Karp-Flatt, the study
beside it, warnings, cores busy), each computed once on first use.

This is where the run meets the strategy registry: the strategies' own phase columns, whether
they run in-process and their notes come from experiments.strategies (after loading the run's
plugins). A strategy unknown here (a plugin no longer installed) counts as not in-process, with
no phases and no notes of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from experiments import strategies as registry
from experiments.contract import Strategy
from harness.analysis import (
    cell_runs,
    checks,
    loss_sessions,
    losses,
    models,
    phases,
    processes,
    replay,
    scaling,
    session_level,
    study,
)
from harness.config import Config
from harness.rundir import store
from harness.rundir.meta import RunMeta, run_meta
from harness.schema import BASELINE, CELL_KEYS, phase_column


@dataclass(frozen=True)
class Results:
    run_dir: Path
    meta: dict  # meta.json as read; run_meta is the typed view
    runs: pd.DataFrame
    table: pd.DataFrame  # scaling.scaling_table: one row per cell that ran
    skipped: list[dict]  # cells the plan skipped, with the reason
    plugin_errors: tuple[str, ...] = ()  # plugins of the run that could not be loaded here

    @cached_property
    def run_meta(self) -> RunMeta:
        return run_meta(self.meta, str(self.run_dir / store.META))

    @property
    def config(self) -> Config:
        """The config the run was recorded with."""
        return self.run_meta.config

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def strategies(self) -> list[str]:
        """The run's strategies (the baseline left out), in the config's order; a variant by
        its label (P_TORCH[in_order=false])."""
        return self.config.labels

    @property
    def saving_modes(self) -> list[bool]:
        return list(self.config.saving)

    # What the registry says about the run's strategies.
    @cached_property
    def known(self) -> dict[str, Strategy]:
        """The run's strategies (baseline first) that the registry knows, by label."""
        found = {n: registry.find(n) for n in [BASELINE, *self.strategies]}
        return {n: s for n, s in found.items() if s is not None}

    @cached_property
    def in_process(self) -> frozenset[str]:
        return frozenset(n for n in [BASELINE, *self.strategies] if registry.in_process(n))

    @cached_property
    def extra_phases(self) -> dict[str, str]:
        """The strategies' own phase columns with their labels ({t_<key>_s: label})."""
        return {
            phase_column(key): label for s in self.known.values() for key, label in s.phases.items()
        }

    @cached_property
    def strategy_notes(self) -> list[str]:
        # dict.fromkeys: variants of one strategy share its notes
        return list(dict.fromkeys(note for s in self.known.values() for note in s.notes))

    # Derived views, computed once and shared by every section and format.
    @cached_property
    def cores(self) -> int:
        return processes.usable_cores(self.meta)

    @cached_property
    def between(self) -> session_level.Between | None:
        """The between-session level of a paired run's speedups, when enough sessions tell."""
        if not cell_runs.paired(self.runs):
            return None
        return session_level.between_sessions(
            self.run_dir, self.run_meta, self.runs, self.table, self.cores
        )

    @cached_property
    def across_sessions(self) -> pd.DataFrame | None:
        """Per cell at W <= cores: its speedup's interval within the run and across sessions."""
        if self.between is None:
            return None
        return session_level.across_sessions(self.table, self.between, self.cores)

    @cached_property
    def processes(self) -> pd.Series:
        return processes.cell_processes(self.table, self.runs, self.in_process)

    @cached_property
    def oversubscribed(self) -> pd.Series:
        """Per row of `table`: more busy processes than the usable cores."""
        return processes.oversubscribed(self.processes, self.cores)

    @cached_property
    def oversubscribed_cells(self) -> frozenset[tuple[str, bool, int]]:
        rows = self.table[self.oversubscribed]
        return frozenset(
            (str(s), bool(m), int(w))
            for s, m, w in zip(rows["strategy"], rows["saving"], rows["workers"], strict=True)
        )

    def per_cell(self, values: pd.Series, frame: pd.DataFrame) -> pd.Series:
        """A series aligned with `table` (processes, oversubscribed, ...) for the rows of any
        other per-cell frame (phase table, cores busy, ...), matched by cell key."""
        by_key = dict(
            zip(self.table[CELL_KEYS].itertuples(index=False, name=None), values, strict=True)
        )
        keys = frame[CELL_KEYS].itertuples(index=False, name=None)
        return pd.Series([by_key.get(k) for k in keys], index=frame.index)

    def is_oversubscribed(self, frame: pd.DataFrame) -> pd.Series:
        return self.per_cell(self.oversubscribed, frame).fillna(False).astype(bool)

    @cached_property
    def phases(self) -> pd.DataFrame:
        return phases.phase_table(self.runs, self.extra_phases, self.in_process)

    @cached_property
    def phase_parts(self) -> list[tuple[str, str]]:
        return phases.phase_columns(self.phases, self.extra_phases)

    @cached_property
    def speedups(self) -> pd.DataFrame:
        return scaling.per_run_speedups(self.runs, self.kind)

    @cached_property
    def fits(self) -> list[models.SeriesFit]:
        return models.fit_series(self.speedups, self.kind, self.oversubscribed_cells)

    @cached_property
    def karp_flatt(self) -> pd.DataFrame | None:
        return models.karp_flatt_table(self.table) if self.kind == "strong" else None

    @cached_property
    def reproduction(self) -> tuple[pd.DataFrame, str]:
        """(this run's cells beside the study's, the study series they were matched to)."""
        return study.reproduction_table(self.table, self.kind)

    @cached_property
    def warnings(self) -> list[str]:
        return checks.report_warnings(self.meta, self.runs, self.table, self.oversubscribed)

    @cached_property
    def baselines(self) -> dict[bool, float]:
        return scaling.baselines(self.table)

    @cached_property
    def tasks(self) -> pd.DataFrame | None:
        """The per-task trace (tasks/), or None for a folder made before traces."""
        return store.load_tasks(self.run_dir)

    @cached_property
    def losses(self) -> pd.DataFrame:
        """The efficiency-loss account per cell (analysis/losses.py), each cause's interval
        across sessions where earlier sessions tell (analysis/loss_sessions.py); empty without
        traces."""
        return loss_sessions.across_sessions(self._losses_in_run, self.loss_levels)

    @cached_property
    def _losses_in_run(self) -> pd.DataFrame:
        return losses.loss_table(self.runs, self.tasks, self.table, self.in_process)

    @cached_property
    def loss_levels(self) -> loss_sessions.CauseLevels | None:
        """The causes' between-session level of a paired run, when enough sessions tell."""
        if self._losses_in_run.empty or not cell_runs.paired(self.runs):
            return None
        return loss_sessions.cause_levels(
            self.run_dir, self.run_meta, self._losses_in_run, self.cores
        )

    def replay(self, workers: list[int] | None = None) -> pd.DataFrame:
        """The replay bound (analysis/replay.py) at the run's W, or at `workers`; strong only."""
        if self.kind != "strong":
            return replay.replay_table(self.runs, None, self.table, self.known, self.cores)
        return replay.replay_table(
            self.runs, self.tasks, self.table, self.known, self.cores, workers
        )

    @cached_property
    def replayed(self) -> pd.DataFrame:
        return self.replay()

    @cached_property
    def study_replay(self) -> tuple[pd.DataFrame, str | None]:
        """(the replay at the study's worker counts beside its efficiencies, or why not)."""
        why = replay.study_size_reason(self.meta, self.runs, self.tasks)
        if why is not None:
            return pd.DataFrame(columns=replay.STUDY_REPLAY_COLUMNS), why
        paper = study.load_paper()
        table = replay.study_replay(
            self.runs, self.tasks, self.table, self.known, self.cores, paper
        )
        return table, None

    def run_trace(self, cell_id: str, repeat: int) -> pd.DataFrame:
        tasks = self.tasks
        if tasks is None:
            return pd.DataFrame()
        return tasks[tasks["cell_id"].eq(cell_id) & tasks["repeat"].eq(repeat)]


def load_plugins(config: Config) -> tuple[str, ...]:
    """Load the run's strategy plugins; one line per plugin that cannot be loaded here."""
    errors = []
    for plugin in config.plugins:
        try:
            registry.load_plugins([plugin])
        except Exception as err:  # noqa: BLE001 - any broken plugin: the report still renders
            errors.append(f"{plugin}: {type(err).__name__}: {err}")
    return tuple(errors)


def load_results(run_dir: Path) -> Results:
    run_dir = store.require_run_dir(Path(run_dir))
    meta = store.read_meta(run_dir)
    typed = run_meta(meta, str(run_dir / store.META))
    runs = store.load_runs(run_dir)
    errors = load_plugins(typed.config)
    table = scaling.scaling_table(runs, typed.config.kind, typed)
    return Results(run_dir, meta, runs, table, meta.get("skipped", []), errors)
