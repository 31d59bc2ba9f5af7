"""The `rcd-sweep` command: run, resume, compare, export, unlearn and ui."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

# Telemetry and usage statistics stay off unless the user turns them on explicitly.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

logger = logging.getLogger("rcd_sweep")

DEFAULT_PORT = 5000


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input or an unreachable service, reported without a traceback."""
    from sweeps.config import ConfigError
    from sweeps.plugins import PluginError
    from sweeps.runner import ClusterError, SweepExistsError, SweepStateError
    from sweeps.tracking import TrackingError
    from unlearning.checkpoints import CheckpointError
    from unlearning.data import DatasetError
    from unlearning.device import DeviceError
    from unlearning.methods import MethodError
    from unlearning.metrics.rcd import RcdError
    from unlearning.models import ModelError
    from unlearning.splits import SplitError
    from unlearning.training import TrainingError

    return (
        ConfigError, ClusterError, SweepExistsError, SweepStateError, PluginError, TrackingError, CheckpointError,
        DatasetError, DeviceError, MethodError, RcdError, ModelError, SplitError, TrainingError,
    )


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("ray", "mlflow", "alembic", "optuna", "urllib3", "filelock", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _add_sweep_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="sweep YAML file; omit it for the default sweep (IEU on digits)")
    parser.add_argument("--trials", type=int, help="number of trials (overrides `trials`)")
    parser.add_argument("--concurrency", type=int, help="trials running at the same time (overrides `concurrency`)")
    parser.add_argument("--address", help="Ray cluster address, 'auto' or HOST:PORT; omit it to start Ray on this machine")
    parser.add_argument("--tracking-uri", dest="tracking_uri", help="MLflow tracking URI (default: sqlite database under the storage folder)")
    parser.add_argument("--storage", help="folder for the MLflow store, Optuna study, Ray Tune state and cache (default: mlruns)")
    parser.add_argument("--device", help="auto, cpu or cuda (default: auto)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="override any configuration key, for example --set rcd.max_steps=1000 (repeatable)",
    )


def _sweep_config(args: argparse.Namespace, model=None, **more):
    """Load the configuration file with the command-line options applied; `more` adds options of one command."""
    from sweeps.config import SweepConfig, load_config

    extra = {
        "trials": args.trials,
        "concurrency": args.concurrency,
        "address": args.address,
        "tracking_uri": args.tracking_uri,
        "storage": args.storage,
        "device": args.device,
        **more,
    }
    return load_config(args.config, args.overrides, extra, model=model or SweepConfig)


def _print_result(config, result) -> None:
    from sweeps.report import format_table

    print(f"\nPareto front of sweep {result.name!r} ({len(result.pareto)} of {len(result.trials)} completed trials, {result.failed} failed):")
    print(format_table(result.pareto))
    print(f"\nHypervolume {result.hypervolume:.4f} (reference point {result.reference_point}); wall time {result.wall_time_s:.1f} s.")
    if result.best_config_path is not None:
        print(f"Best configuration ({config.export.rule}): {result.best_config_path}")
    print(f"Report files: {result.files['trials'].parent}")


def command_run(args: argparse.Namespace) -> int:
    from sweeps.runner import run_sweep

    config = _sweep_config(args)
    _print_result(config, run_sweep(config, fresh=args.fresh))
    return 0


def command_compare(args: argparse.Namespace) -> int:
    from sweeps.compare import CompareConfig, print_comparison, run_comparison

    methods = [name.strip() for name in args.methods.split(",") if name.strip()] if args.methods else None
    config = _sweep_config(args, CompareConfig, methods=methods, ablations=True if args.ablations else None, rule=args.rule)
    print_comparison(run_comparison(config, fresh=args.fresh))
    return 0


def saved_sweep_config(name_or_path: str, storage: str | None, tracking_uri: str | None = None):
    """Load the configuration a sweep saved in its output folder.

    `name_or_path` is a sweep name, looked up under `storage` (default mlruns), or the sweep's
    output folder STORAGE/sweeps/NAME, or the config.yaml inside it. The storage folder of a
    path is the folder that contains it, wherever the command runs from.
    """
    from sweeps.config import ConfigError, load_config

    given = Path(name_or_path)
    if given.is_file() or (given / "config.yaml").is_file():
        config_path = given / "config.yaml" if given.is_dir() else given
        storage_root = config_path.resolve().parent.parent.parent
    else:
        storage_root = Path(storage or "mlruns")
        config_path = storage_root / "sweeps" / name_or_path / "config.yaml"
    if not config_path.is_file():
        raise ConfigError(
            f"No saved sweep configuration at {str(config_path)!r}. Pass the name of a sweep that started its trials "
            "(with --storage if it is not in ./mlruns) or the path of its folder STORAGE/sweeps/NAME."
        )
    return load_config(config_path, [], {"storage": str(storage_root), "tracking_uri": tracking_uri})


def command_resume(args: argparse.Namespace) -> int:
    from sweeps.runner import resume_sweep

    config = saved_sweep_config(args.sweep, args.storage, args.tracking_uri)
    _print_result(config, resume_sweep(config))
    return 0


def command_export(args: argparse.Namespace) -> int:
    import optuna

    from sweeps.config import ConfigError
    from sweeps.export import select_trial, write_unlearn_config
    from sweeps.runner import collect_trials, optuna_storage, sweep_paths
    from sweeps.tracking import SweepTracker, default_tracking_uri

    config = saved_sweep_config(args.name, args.storage, args.tracking_uri)
    paths = sweep_paths(config)
    tracker = SweepTracker(config.tracking_uri or default_tracking_uri(paths.storage), config.name)
    tracker.parent_run_id = tracker.find_parent()
    if tracker.parent_run_id is None:
        raise ConfigError(f"Sweep {args.name!r} has no parent run in the MLflow store; run it first.")
    study = optuna.load_study(study_name=config.name, storage=optuna_storage(paths.optuna_url))
    trials, *_ = collect_trials(config, tracker, study)

    rule = args.rule or config.export.rule
    limit = config.export.retain_acc_loss_limit if args.limit is None else args.limit
    objectives = [o.metric for o in config.objectives]
    directions = [o.direction for o in config.objectives]
    try:
        selected = select_trial(trials, rule, limit, objectives, directions)
    except ValueError as error:
        raise ConfigError(f"Cannot export from sweep {args.name!r}: {error}.") from error
    out = Path(args.out) if args.out else paths.output / "best_config.yaml"
    write_unlearn_config(out, config, selected, rule, limit)
    print(f"Selected trial {int(selected['trial'])} by rule {rule!r}: " + ", ".join(f"{m}={selected[m]:.4g}" for m in objectives))
    print(f"Wrote {out}")
    print(f"The sweep's original model is {paths.output / 'original.pt'}")
    return 0


def command_unlearn(args: argparse.Namespace) -> int:
    from sweeps.config import ConfigError
    from sweeps.export import load_unlearn_config
    from sweeps.plugins import load_plugins
    from sweeps.setup import (
        load_data,
        model_spec,
        prepare,
        torch_threads,
        trial_threads,
    )
    from unlearning.checkpoints import load_checkpoint, save_checkpoint
    from unlearning.device import resolve_device
    from unlearning.methods import parse_params, run_method

    exported = load_unlearn_config(args.config)
    if args.device:
        exported.device = args.device
    config = exported.as_sweep_config()
    load_plugins(config.plugins)
    parse_params(config.method.name, config.method.params)
    model, spec, _ = load_checkpoint(args.checkpoint)

    # The checkpoint is checked against the data before the references train, which takes minutes.
    dataset = load_data(config)
    expected = model_spec(config, dataset)
    if spec != expected:
        raise ConfigError(
            f"Checkpoint {args.checkpoint!r} contains a {spec.name!r} model for inputs {spec.input_shape} with {spec.num_classes} classes "
            f"and options {spec.options}, but the configuration describes {expected.name!r} for {expected.input_shape} with "
            f"{expected.num_classes} classes and options {expected.options}. Use the checkpoint the sweep was run with."
        )
    *_, evaluator = prepare(config, dataset)

    device = resolve_device(config.device)
    with torch_threads(trial_threads(config)):
        evaluator = evaluator.to(device)
        outcome = run_method(config.method.name, model, evaluator.data, config.method.params, seed=config.method.seed, device=device)
        evaluation = evaluator.evaluate(outcome.model, outcome.runtime_s)

    out = Path(args.out)
    save_checkpoint(out, outcome.model, spec, {"method": config.method.name, "params": config.method.params, "metrics": evaluation.metrics})
    metrics_path = out.with_suffix(".metrics.json")
    metrics_path.write_text(json.dumps(evaluation.metrics, indent=2, sort_keys=True))
    for name, value in evaluation.metrics.items():
        print(f"{name:16s} {value:.6g}")
    print(f"Wrote {out} and {metrics_path}")
    return 0


def command_ui(args: argparse.Namespace) -> int:
    from sweeps.config import ConfigError

    storage = Path(args.storage or "mlruns").resolve()
    backend = args.backend_store_uri or f"sqlite:///{storage / 'mlflow.db'}"
    artifacts = args.artifacts_destination or (storage / "artifacts").as_uri()
    try:
        import mlflow.server  # noqa: F401  (mlflow-skinny lacks the server and the UI)
    except ImportError as error:
        raise ConfigError("The MLflow server is not installed; install the full mlflow package, not mlflow-skinny.") from error
    # `python -m mlflow` finds the mlflow that rcd-sweep runs with, whatever is on PATH.
    executable = sys.executable
    if args.server:
        command = [executable, "-m", "mlflow", "server", "--backend-store-uri", backend, "--artifacts-destination", artifacts, "--host", args.host, "--port", str(args.port), "--workers", "1"]
    else:
        command = [executable, "-m", "mlflow", "ui", "--backend-store-uri", backend, "--default-artifact-root", artifacts, "--host", args.host, "--port", str(args.port)]
    print(f"MLflow {'server' if args.server else 'UI'} on http://{args.host}:{args.port} (backend {backend}); stop it with Ctrl-C.", flush=True)
    os.execv(executable, command)
    return 0  # not reached: execv replaces this process, so its PID is the server's


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rcd-sweep", description="Multi-objective hyperparameter sweeps for machine unlearning, scored by RCD.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a sweep (the default: IEU on digits, 30 trials, 2 at a time)")
    _add_sweep_options(run)
    run.add_argument("--fresh", action="store_true", help="delete an existing sweep of the same name and start over")
    run.set_defaults(handler=command_run)

    compare = commands.add_parser("compare", help="run every method with the same budget and print the comparison table")
    _add_sweep_options(compare)
    compare.add_argument("--methods", help="comma-separated methods (default: ieu and every baseline)")
    compare.add_argument("--ablations", action="store_true", help="add IEU's ablations (noise only, ascent only, ascent + noise, ascent + decay) as rows")
    compare.add_argument("--rule", choices=["max_rcd_within_loss", "min_avg_gap", "knee"], help="selection rule per method (default: export.rule)")
    compare.add_argument("--fresh", action="store_true", help="rerun every method's sweep even when it finished before")
    compare.set_defaults(handler=command_compare)

    resume = commands.add_parser("resume", help="continue an interrupted sweep without rerunning or relogging finished trials")
    resume.add_argument("sweep", help="sweep name, or its folder STORAGE/sweeps/NAME")
    resume.add_argument("--storage", help="storage folder of the sweep, when given by name (default: mlruns)")
    resume.add_argument("--tracking-uri", dest="tracking_uri", help="MLflow tracking URI, if the sweep used a server")
    resume.set_defaults(handler=command_resume)

    export = commands.add_parser("export", help="write the best configuration of a sweep as a runnable file")
    export.add_argument("name", help="sweep name, or its folder STORAGE/sweeps/NAME")
    export.add_argument("--storage", help="storage folder of the sweep (default: mlruns)")
    export.add_argument("--tracking-uri", dest="tracking_uri", help="MLflow tracking URI, if the sweep used a server")
    export.add_argument("--rule", choices=["max_rcd_within_loss", "min_avg_gap", "knee"], help="selection rule (default: the sweep's export.rule)")
    export.add_argument("--limit", type=float, help="retain_acc_loss limit of max_rcd_within_loss, as a fraction (default: export.retain_acc_loss_limit)")
    export.add_argument("--out", help="output file (default: STORAGE/sweeps/NAME/best_config.yaml)")
    export.set_defaults(handler=command_export)

    unlearn = commands.add_parser("unlearn", help="apply an exported configuration to a checkpoint")
    unlearn.add_argument("config", help="file written by `rcd-sweep export`")
    unlearn.add_argument("--checkpoint", required=True, help="checkpoint of the model to unlearn (rcd-sweep format)")
    unlearn.add_argument("--out", required=True, help="where to write the unlearned checkpoint; metrics go next to it as .metrics.json")
    unlearn.add_argument("--device", help="auto, cpu or cuda (default: the configuration's device)")
    unlearn.set_defaults(handler=command_unlearn)

    ui = commands.add_parser("ui", help="start the MLflow UI (or a tracking server) for a sweep store")
    ui.add_argument("--storage", help="storage folder (default: mlruns)")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    ui.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    ui.add_argument("--server", action="store_true", help="start `mlflow server` (serves artifacts to remote clients) instead of `mlflow ui`")
    ui.add_argument("--backend-store-uri", dest="backend_store_uri", help="MLflow backend store (default: the storage folder's mlflow.db)")
    ui.add_argument("--artifacts-destination", dest="artifacts_destination", help="artifact location (default: the storage folder's artifacts/)")
    ui.set_defaults(handler=command_ui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `rcd-sweep` console script."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    errors = _user_errors()
    try:
        return args.handler(args)
    except errors as error:
        print(f"rcd-sweep: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rcd-sweep: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
