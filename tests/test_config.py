"""Bad input through the command line: a one-paragraph message, exit status 2 and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sweeps.cli import main
from sweeps.config import SweepConfig, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


def space(**parameter) -> str:
    return yaml.safe_dump({"search_space": {"method": "ieu", "parameters": {"lr": parameter}}})


CASES = {
    "invalid yaml": ("trials: [1, 2\n", "Invalid YAML", []),
    "unknown key": ("trails: 30\n", "trails: unknown key", []),
    "nested unknown key": ("rcd:\n  max_step: 10\n", "rcd.max_step: unknown key", []),
    "wrong type": ("trials: many\n", "trials: Input should be a valid integer", []),
    "out of range": ("scenario:\n  fraction: 1.5\n", "scenario.fraction", []),
    "reversed range": (space(type="float", low=0.5, high=0.1), "'low' (0.5) is greater than 'high' (0.1)", []),
    "log range at zero": (space(type="float", low=0.0, high=0.1, log=True), "log-scaled range needs low > 0", []),
    "unknown sampler": ("sampler:\n  name: cmaes\n", "sampler.name", []),
    "unknown objective": ("objectives:\n  - {metric: fq, direction: maximize}\n", "unknown metric 'fq'", []),
    "unknown method": ("method:\n  name: fisher\n", "Unknown unlearning method 'fisher'", []),
    "unknown dataset": ("data:\n  dataset: imagenet\n", "imagenet", []),
    "unknown model": ("model:\n  name: vit\n", "model.name", []),
    "missing data directory": ("data:\n  dataset: mnist\n  data_dir: /nonexistent/mnist\n", "/nonexistent/mnist", []),
    "unknown search space": ("search_space: sgd\n", "Search space 'sgd' was not found", []),
    "search space of another method": (yaml.safe_dump({"search_space": {"method": "salun", "parameters": {"lr": {"type": "float", "low": 0.1, "high": 1}}}}), "for method 'salun'", []),
    "unknown method parameter": ("method:\n  params: {alpha: 1}\n", "alpha", []),
    "bad override": ("", "Invalid override 'trials'", ["--set", "trials"]),
    "unreachable tracking server": ("", "did not answer", ["--tracking-uri", "http://127.0.0.1:9"]),
    "unsupported tracking uri": ("", "Unsupported MLflow tracking URI", ["--tracking-uri", "ftp://example"]),
    "missing config file": (None, "was not found", []),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_rejected(case, tmp_path, capsys):
    text, expected, extra = CASES[case]
    config = str(tmp_path / "absent.yaml") if text is None else str(write(tmp_path, text))

    exit_code = main(["run", config, "--storage", str(tmp_path / "mlruns"), *extra])

    captured = capsys.readouterr()
    assert exit_code == 2
    assert expected in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert captured.err.startswith("rcd-sweep: error: ")


def test_defaults_are_valid():
    config = load_config()

    assert config.trials >= 30
    assert config.concurrency == 2
    assert [o.metric for o in config.objectives] == ["rcd", "retain_acc_loss"]
    assert config.data.dataset == "digits"


def test_cli_options_override_file(tmp_path):
    path = write(tmp_path, "trials: 5\nconcurrency: 1\n")

    config = load_config(path, ["rcd.max_steps=900", "sampler.name=nsga2"], {"trials": 12})

    assert config.trials == 12
    assert config.concurrency == 1
    assert config.rcd.max_steps == 900
    assert config.sampler.name == "nsga2"


def test_constraint_string_parsed():
    config = SweepConfig.model_validate({"constraints": ["test_acc_loss <= 0.05"]})

    assert config.constraints[0].metric == "test_acc_loss"
    assert config.constraints[0].violation({"test_acc_loss": 0.08}) == pytest.approx(0.03)


def test_rcd_defaults_match_library():
    """The sweep file's `rcd:` defaults are the library's RcdConfig defaults."""
    from sweeps.config import RcdSettings
    from unlearning.metrics.rcd import RcdConfig

    assert RcdSettings().model_dump() == RcdConfig().to_dict()


def test_training_defaults_match_library():
    from sweeps.config import TrainingConfig
    from unlearning.training import TrainingRecipe

    values = TrainingConfig().model_dump()
    values.pop("seed")
    assert values == TrainingRecipe().to_dict()
