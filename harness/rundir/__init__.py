"""Layer: run folder. Every file of `results/<name>/<run id>/`, written atomically and read or
refused in one line: runs, tasks, meta, the runner's unit files, seeds."""
