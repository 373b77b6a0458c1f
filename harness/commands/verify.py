"""`verify`: the config's strategies and every other one installed produce the same images as
the sequential baseline (harness/measure/verify.py), under the machine-wide lock. Exit 1 on a
mismatch."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness.commands.measuring import measuring
from harness.config import load_config
from harness.measure.verify import verify
from harness.plan import inputs


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    found = inputs.inspect(config, args.config)
    config = inputs.with_folder_size(config, found)
    with (
        measuring("verify", args),
        tempfile.TemporaryDirectory(prefix="augscale-verify-") as tmp,
    ):
        ok = verify(config, inputs.prepare(config, found, Path(tmp)).dirs)
    print(
        "all strategies match sequential"
        if ok
        else "MISMATCH: some strategy differs from sequential"
    )
    return 0 if ok else 1
