"""What `verify` checks: the config's strategies and every other strategy shipped with augscale
and installed here, each at the config's worker counts; a strategy whose package is missing is
named as skipped, never dropped in silence."""

from __future__ import annotations

import dataclasses

from _tiny import config as tiny_config

from experiments import strategies
from harness.measure import verify


def test_every_installed_strategy_is_verified_after_the_configs_own():
    config = tiny_config(workers=[2], strategies=["P_2", {"P_TORCH": {"in_order": False}}])
    labels, skipped = verify.checked(config)
    shipped = {n for n in strategies.registry() if strategies.shipped(n)}
    installed = {n for n in shipped if not strategies.registry()[n].missing()}
    assert labels[:2] == ["P_2", "P_TORCH[in_order=false]"]
    assert set(labels) | {"sequential"} == installed | {"P_TORCH[in_order=false]"}
    assert len(labels) == len(set(labels))
    assert set(skipped) == shipped - installed
    ran = {run[0] for run in verify.verify_runs(config)}
    assert ran == {"sequential", *labels}


def test_a_strategy_whose_package_is_missing_is_named_as_skipped(monkeypatch):
    found = dict(strategies.registry())
    found["P_NEEDY"] = dataclasses.replace(
        found["P_T"], name="P_NEEDY", requires=("augscale_no_such_module",), extra="needy"
    )
    monkeypatch.setattr(strategies, "registry", lambda: found)
    monkeypatch.setattr(strategies, "shipped", lambda name: True)
    monkeypatch.setattr(verify, "run_digest", lambda name, workers, folder, config, batch: "same")
    lines: list[str] = []
    config = tiny_config(workers=[2], strategies=["P_1"])
    assert verify.verify(config, {(160, 80): None}, lines.append)
    assert "P_NEEDY" not in {run[0] for run in verify.verify_runs(config)}
    needy = [line for line in lines if line.startswith("P_NEEDY")]
    assert needy == [
        "P_NEEDY      skipped: needs augscale_no_such_module (make install EXTRAS=needy)"
    ]
    checked = {line.split()[0] for line in lines if line.endswith("OK")}
    installed = {n for n, s in found.items() if not s.missing()}  # torch may be absent here
    assert checked == installed


def test_a_plugin_loaded_for_another_config_is_not_this_ones(monkeypatch):
    found = dict(strategies.registry())
    found["P_OTHER"] = dataclasses.replace(found["P_T"], name="P_OTHER")
    monkeypatch.setattr(strategies, "registry", lambda: found)
    monkeypatch.setattr(strategies, "shipped", lambda name: name != "P_OTHER")
    labels, skipped = verify.checked(tiny_config(workers=[2], strategies=["P_1"]))
    assert "P_OTHER" not in labels and "P_OTHER" not in skipped
    named, _ = verify.checked(tiny_config(workers=[2], strategies=["P_OTHER"]))
    assert named[0] == "P_OTHER"
