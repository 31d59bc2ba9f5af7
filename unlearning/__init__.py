"""A plain PyTorch library for machine unlearning: data sets, splits, models, methods and metrics (RCD included).

It never imports Ray, Optuna, MLflow or the `sweeps` package, so it can be used on its own.
"""
