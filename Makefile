# Every target installs the project into .venv on first use, so each works on a fresh clone.
# EXTRAS=torch adds optional extras to the always-installed dask, dev and joblib (P_TORCH needs
# torch: `make install EXTRAS=torch`; docs/STRATEGIES.md, "Optional parts"). `make bench` and
# `make race` run P_TORCH, so they install the torch extra themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
comma  := ,
ifneq ($(filter bench race,$(MAKECMDGOALS)),)
EXTRAS ?= torch
endif
EXTRAS ?=
STAMP  := $(VENV)/.installed-stamp$(if $(EXTRAS),-$(subst $(comma),-,$(EXTRAS)))
RUN_PY := $(BIN)/python -m harness

export NO_ALBUMENTATIONS_UPDATE := 1

EXTRA := $(if $(OUT),--out $(OUT)) $(if $(RESUME),--resume $(RESUME)) $(if $(FORCE),--force) \
         $(if $(IGNORE_LOCK),--ignore-lock) $(if $(BUDGET),--budget $(BUDGET))

.PHONY: help install strong-scaling weak-scaling race report verify compare ab bench test test-fast lint clean

help:
	@echo "make strong-scaling [CONFIG=configs/strong_scaling.yaml] [OUT=dir] [BUDGET=45m]"
	@echo "make weak-scaling   [CONFIG=configs/weak_scaling.yaml] [OUT=dir]"
	@echo "make race [CONFIG=configs/race.yaml] [BUDGET=15m] [MARGIN=0.02]   which strategy, how many workers"
	@echo "make report RUN=results/<name>/<run>   re-render a run's report from its parquet"
	@echo "make verify CONFIG=configs/quick_strong.yaml   identical outputs across strategies"
	@echo "make compare A=<run> B=<run>   two runs cell by cell"
	@echo "make ab A=<rev> [B=<rev>] [CONFIG=configs/ab_quick.yaml] [ONLY=P_2]   a code change, in pairs"
	@echo "make bench   every strategy side by side, then the harness's own overhead"
	@echo "make test    lint + the test suite"
	@echo "make test-fast   lint + the tests not marked slow (no sweeps, killed processes, browser)"
	@echo "make install EXTRAS=torch   also install torch (P_TORCH), pinned to its CPU build's version"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dask,dev,joblib$(if $(EXTRAS),$(comma)$(EXTRAS))]'
	@touch $(STAMP)

install: $(STAMP)

strong-scaling: $(STAMP)
	$(RUN_PY) run $(or $(CONFIG),configs/strong_scaling.yaml) $(EXTRA)

weak-scaling: $(STAMP)
	$(RUN_PY) run $(or $(CONFIG),configs/weak_scaling.yaml) $(EXTRA)

race: $(STAMP)
	$(RUN_PY) race $(or $(CONFIG),configs/race.yaml) $(EXTRA) $(if $(BUDGET),,--budget 15m) \
		$(if $(MARGIN),--margin $(MARGIN))

report: $(STAMP)
	@test -n "$(RUN)" || { echo "make report: set RUN=results/<name>/<run id> (a run folder holding runs.parquet)" >&2; exit 2; }
	$(RUN_PY) report $(RUN)

verify: $(STAMP)
	$(RUN_PY) verify $(or $(CONFIG),configs/quick_strong.yaml)

ab: $(STAMP)
	@test -n "$(A)" || { echo "make ab: set A=<revision or checkout folder> (B defaults to this working tree)" >&2; exit 2; }
	$(RUN_PY) ab $(or $(CONFIG),configs/ab_quick.yaml) --a $(A) $(if $(B),--b $(B)) \
		$(if $(ONLY),--only $(ONLY)) $(if $(OUT),--out $(OUT)) $(if $(IGNORE_LOCK),--ignore-lock)

bench: $(STAMP)
	$(RUN_PY) run $(or $(CONFIG),configs/bench_strategies.yaml) $(EXTRA)
	$(RUN_PY) overhead --pairs 30

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q

# The inner loop: every module's unit tests; CI and `make test` run the slow ones too.
test-fast: lint
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf .cache $(VENV) results/*/*/scratch

compare: $(STAMP)
	@test -n "$(A)" -a -n "$(B)" || { echo "make compare: set A=<run dir> B=<run dir>" >&2; exit 2; }
	$(RUN_PY) compare $(A) $(B)
