"""Sweeps on an existing Ray cluster, on two simulated nodes, on logical GPUs, and through an MLflow tracking server.

Every server binds to 127.0.0.1 inside the test's network namespace and is stopped by the PID this
test started.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import ray
import torch
from conftest import free_port, get_json
from mlflow.tracking import MlflowClient
from ray.cluster_utils import Cluster

import sweeps.setup
from sweeps.cli import main
from sweeps.config import load_config
from sweeps.runner import _connect_ray, run_sweep
from sweeps.tracking import ROLE_TAG
from sweeps.trial import trial_device

RAY = Path(sys.executable).with_name("ray")


def sweep_settings(tmp_path: Path, name: str, **extra) -> dict:
    settings = {
        "name": name,
        "trials": 4,
        "concurrency": 2,
        "sampler": {"name": "random", "seed": 0},
        "training": {"epochs": 5},
        "rcd": {"seeds": [0], "max_steps": 200},
        "search_space": {"method": "ieu", "parameters": {"ascent_steps": {"type": "int", "low": 5, "high": 60}}},
        "storage": str(tmp_path / "mlruns"),
    }
    settings.update(extra)
    return settings


def child_runs(tracking_uri: str, name: str) -> list:
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(name)
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.`{ROLE_TAG}` = 'trial'")


def local_store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a server this test started: SIGINT as Ctrl-C would, then SIGKILL what is left of its group."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def test_run_against_started_head(tmp_path):
    port = free_port()
    head = subprocess.Popen(
        [str(RAY), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
         "--include-dashboard", "false", "--disable-usage-stats", "--block"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        config = tmp_path / "sweep.yaml"
        config.write_text(json.dumps(sweep_settings(tmp_path, "on-head")))
        exit_code = main(["run", str(config), "--address", f"127.0.0.1:{port}"])
    finally:
        stop_process_group(head)

    runs = child_runs(local_store(tmp_path), "on-head")
    assert exit_code == 0
    assert len(runs) == 4
    assert {run.info.status for run in runs} == {"FINISHED"}


@pytest.fixture
def cluster():
    clusters = []

    def start(nodes: list[dict]) -> Cluster:
        created = Cluster(initialize_head=True, head_node_args=nodes[0])
        clusters.append(created)
        for node in nodes[1:]:
            created.add_node(**node)
        created.wait_for_nodes()
        return created

    yield start
    for created in clusters:
        if ray.is_initialized():
            ray.shutdown()
        created.shutdown()


def test_two_nodes_share_references(tmp_path, cluster, monkeypatch):
    two_nodes = cluster([{"num_cpus": 1}, {"num_cpus": 1}])
    node_ids = {node.node_id for node in two_nodes.list_all_nodes()}
    built = []
    build = sweeps.setup.build_references
    monkeypatch.setattr(sweeps.setup, "build_references", lambda *args, **kwargs: built.append(1) or build(*args, **kwargs))

    config = load_config(None, [], sweep_settings(tmp_path, "two-nodes", address=two_nodes.address))
    result = run_sweep(config)

    runs = child_runs(local_store(tmp_path), "two-nodes")
    assert len(result.trials) == 4
    assert {run.data.tags["ray.node_id"] for run in runs} == node_ids
    assert len(built) == 1
    assert len({run.data.tags["ray.references"] for run in runs}) == 1


def max_overlap(starts: list[float], ends: list[float]) -> int:
    events = sorted([(start, 1) for start in starts] + [(end, -1) for end in ends], key=lambda event: (event[0], event[1]))
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def test_fractional_gpus_pack_four_trials(tmp_path, cluster, caplog):
    one_gpu = cluster([{"num_cpus": 4, "num_gpus": 1}])
    settings = sweep_settings(
        tmp_path, "quarter-gpus", address=one_gpu.address, trials=8, concurrency=8, resources={"cpu": 0.5, "gpu": 0.25}
    )
    settings["search_space"]["parameters"]["ascent_steps"] = {"type": "int", "low": 150, "high": 200}

    with caplog.at_level(logging.INFO, logger="sweeps.runner"):
        run_sweep(load_config(None, [], settings))

    runs = child_runs(local_store(tmp_path), "quarter-gpus")
    # Child runs carry the trials' own start and end times in milliseconds.
    assert max_overlap([run.info.start_time for run in runs], [run.info.end_time for run in runs]) == 4
    assert all(json.loads(run.data.tags["ray.gpu_ids"]) == ["0"] for run in runs)
    assert {run.data.tags["ray.device"] for run in runs} == {"cuda" if torch.cuda.is_available() else "cpu"}
    assert "a Ray task with one GPU measures the references" in caplog.text


@pytest.mark.parametrize(
    ("gpu_ids", "cuda", "expected"),
    [(["0"], True, "cuda"), ([], True, "cpu"), (["0"], False, "cpu")],
)
def test_trial_device_follows_assignment(monkeypatch, gpu_ids, cuda, expected):
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: gpu_ids)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)

    assert trial_device("auto").type == expected


def test_sweep_through_tracking_server(tmp_path):
    port = free_port()
    server_storage = tmp_path / "server"
    server = subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", "ui", "--server", "--storage", str(server_storage), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        get_json(f"{uri}/api/2.0/mlflow/experiments/search?max_results=10")
        config = tmp_path / "sweep.yaml"
        config.write_text(json.dumps(sweep_settings(tmp_path, "via-server")))
        exit_code = main(["run", str(config), "--tracking-uri", uri])

        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name("via-server")
        runs = client.search_runs([experiment.experiment_id])
        parent = next(run for run in runs if run.data.tags.get(ROLE_TAG) == "parent")
        artifacts = {item.path for item in client.list_artifacts(parent.info.run_id)}
        pareto = Path(client.download_artifacts(parent.info.run_id, "pareto.csv", str(tmp_path)))
    finally:
        stop_process_group(server)

    assert exit_code == 0
    assert sum(run.data.tags.get(ROLE_TAG) == "trial" for run in runs) == 4
    assert {"pareto.csv", "pareto.png", "trials.csv", "config.yaml"} <= artifacts
    assert pareto.read_text().startswith("trial,")
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()


def test_kuberay_entrypoint_parses():
    """The RayJob manifest's entry point is a valid `rcd-sweep run` command line."""
    import shlex

    import yaml

    from sweeps.cli import build_parser

    manifest = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / "kuberay-rayjob.yaml").read_text())
    words = shlex.split(manifest["spec"]["entrypoint"])
    args = build_parser().parse_args(words[1:])

    assert manifest["kind"] == "RayJob"
    assert words[0] == "rcd-sweep"
    assert args.command == "run"
    assert args.address == "auto"
    assert load_config(args.config if Path(args.config).exists() else None, args.overrides).resources.gpu == 0.25


def test_workers_cap_malloc_arenas(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    started = _connect_ray(None)
    try:
        value = ray.get(ray.remote(lambda: os.environ.get("MALLOC_ARENA_MAX")).remote())
    finally:
        if started:
            ray.shutdown()

    assert started is True
    assert value == "2"
