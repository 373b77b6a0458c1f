"""The statistics, one module per question:

- `medians`: a cell's median, its order-statistic interval, spread, outliers, bootstrapped ratios;
- `precision`: the stop rule of `repeats: {min, max, ci}` (when a cell has been measured enough);
- `pairing`: ratios from paired rounds and their signed-rank intervals;
- `levels`: where a cell's variance lives (within a process, over time, between processes);
- `racing`: the race's block tests (Friedman, paired one-sided tests, margins).
"""
