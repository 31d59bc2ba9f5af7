"""Sweep orchestration for the `unlearning` library: configuration, Ray Tune, Optuna, MLflow and the CLI."""
