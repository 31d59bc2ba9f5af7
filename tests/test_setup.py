"""Preparing a sweep: reference measurements are cached next to the references and reused."""

from __future__ import annotations

import logging

from sweeps.config import load_config
from sweeps.setup import prepare
from unlearning.metrics.rcd import RcdProtocol

FAST = {"training": {"epochs": 2}, "rcd": {"seeds": [0], "max_steps": 100}}


def test_second_prepare_reuses_measurements(tmp_path, monkeypatch):
    config = load_config(None, [], {**FAST, "storage": str(tmp_path)})
    *_, first = prepare(config)

    def fail(self, model):
        raise AssertionError("the references were measured again")

    monkeypatch.setattr(RcdProtocol, "measure", fail)
    *_, second = prepare(config)

    assert second.summary() == first.summary()
    assert len(list((tmp_path / "references" / "measurements").glob("*.json"))) == 1


def test_other_protocol_measures_again(tmp_path):
    *_, first = prepare(load_config(None, [], {**FAST, "storage": str(tmp_path)}))
    faster = {**FAST, "rcd": {**FAST["rcd"], "lr": 0.02}}
    *_, second = prepare(load_config(None, [], {**faster, "storage": str(tmp_path)}))

    assert second.rcd_config.lr == 0.02
    assert len(list((tmp_path / "references" / "measurements").glob("*.json"))) == 2


def test_unreadable_measurements_ignored(tmp_path, caplog):
    config = load_config(None, [], {**FAST, "storage": str(tmp_path)})
    *_, first = prepare(config)
    (cached,) = (tmp_path / "references" / "measurements").glob("*.json")
    cached.write_text("{not json")

    with caplog.at_level(logging.WARNING, logger="sweeps.setup"):
        *_, second = prepare(config)

    assert "unreadable reference measurements" in caplog.text
    assert second.summary() == first.summary()
    assert cached.read_text().startswith("{")
    assert second.retrain_rcd.steps == first.retrain_rcd.steps
