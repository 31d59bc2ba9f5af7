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
    "unreachable ray address": ("", "No Ray cluster responds at '127.0.0.1:9'", ["--address", "127.0.0.1:9"]),
    "missing plugin": ("plugins: [no_such_plugin_module]\n", "Plugin module 'no_such_plugin_module' could not be imported", []),
    "plugin name not a module": ("plugins: ['my plugin']\n", "is not a Python module name", []),
    "searched range outside the method's bounds": (space(type="float", low=0.0, high=0.1), "lr=0.0", []),
    "searched and fixed": (space(type="float", low=0.01, high=0.1) + "method:\n  params: {lr: 0.1}\n", "both searched and fixed", []),
    "negative time limit": ("trial_timeout_s: -5\n", "trial_timeout_s", []),
    "sweep name with a slash": ("name: a/b\n", "invalid sweep name", []),
    "gpu fraction above one": ("resources:\n  gpu: 1.5\n", "whole number", []),
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


def malformed_mnist(tmp_path: Path) -> str:
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / name).write_bytes(b"not an IDX file")
    return f"data:\n  dataset: mnist\n  data_dir: {folder}\n"


RUN_CASES_NEEDING_FILES = {
    "malformed data files": (malformed_mnist, "mnist"),
}


@pytest.mark.parametrize("case", sorted(RUN_CASES_NEEDING_FILES))
def test_bad_data_files_rejected(case, tmp_path, capsys):
    make, expected = RUN_CASES_NEEDING_FILES[case]
    config = write(tmp_path, make(tmp_path))

    exit_code = main(["run", str(config), "--storage", str(tmp_path / "mlruns")])

    captured = capsys.readouterr()
    assert exit_code == 2
    assert expected in captured.err
    assert "Traceback" not in captured.err + captured.out


def exported_file(tmp_path: Path, method: dict, name: str = "best_config") -> Path:
    from sweeps.config import MethodConfig, ModelConfig
    from sweeps.export import UnlearnConfig

    exported = UnlearnConfig(sweep="s", method=MethodConfig(**method), model=ModelConfig(name="cnn"))
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(exported.model_dump(mode="json")))
    return path


def mlp_checkpoint(tmp_path: Path) -> Path:
    from unlearning.checkpoints import save_checkpoint
    from unlearning.data import load_dataset
    from unlearning.models import ModelSpec, build_model

    digits = load_dataset("digits")
    spec = ModelSpec("mlp", digits.input_shape, digits.num_classes, digits.mean, digits.std)
    return save_checkpoint(tmp_path / "mlp.pt", build_model(spec), spec)


def saved_sweep(tmp_path: Path) -> Path:
    """The output folder of a sweep whose driver stopped before its first trial."""
    folder = tmp_path / "mlruns" / "sweeps" / "stopped"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("name: stopped\n")
    return folder


def other_command_cases(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    ieu = {"name": "ieu", "params": {"lr": 0.01}}
    return {
        "resume unknown sweep": (["resume", "nothing-here", "--storage", str(tmp_path)], "No saved sweep configuration"),
        "resume a sweep that never started": (["resume", str(saved_sweep(tmp_path))], "cannot be resumed"),
        "export unknown sweep": (["export", "nothing-here", "--storage", str(tmp_path)], "No saved sweep configuration"),
        "unlearn a sweep file": (["unlearn", str(write(tmp_path, "trials: 3\n")), "--checkpoint", "x.pt", "--out", "y.pt"], "is not an exported unlearning configuration"),
        "unlearn missing checkpoint": (["unlearn", str(exported_file(tmp_path, ieu)), "--checkpoint", str(tmp_path / "absent.pt"), "--out", "y.pt"], "absent.pt"),
        "unlearn mismatched checkpoint": (["unlearn", str(exported_file(tmp_path, ieu)), "--checkpoint", str(mlp_checkpoint(tmp_path)), "--out", "y.pt"], "contains a 'mlp' model"),
        "unlearn parameters of another method": (
            ["unlearn", str(exported_file(tmp_path, {"name": "ieu", "params": {"mask_fraction": 0.5}}, "other_method")), "--checkpoint", "x.pt", "--out", "y.pt"],
            "Invalid hyperparameters for method 'ieu': mask_fraction",
        ),
    }


OTHER_COMMAND_CASES = ["resume unknown sweep", "resume a sweep that never started", "export unknown sweep", "unlearn a sweep file", "unlearn missing checkpoint", "unlearn mismatched checkpoint", "unlearn parameters of another method"]


@pytest.mark.parametrize("case", OTHER_COMMAND_CASES)
def test_bad_input_to_other_commands(case, tmp_path, capsys):
    argv, expected = other_command_cases(tmp_path)[case]

    exit_code = main(argv)

    captured = capsys.readouterr()
    assert exit_code == 2
    assert expected in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert captured.err.startswith("rcd-sweep: error: ")
