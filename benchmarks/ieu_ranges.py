import sys, time, math
import numpy as np
import torch
sys.path.insert(0, "/work/main")
from unlearning.data import load_dataset
from unlearning.splits import make_split, SplitData
from unlearning.models import ModelSpec
from unlearning.training import TrainingRecipe
from unlearning.references import build_references
from unlearning.evaluation import UnlearningEvaluator
from unlearning.metrics.rcd import RcdConfig
from unlearning.methods import run_method
from unlearning.training import DivergenceError
torch.set_num_threads(1)
ds = load_dataset("digits")
split = make_split(ds, "random", fraction=0.1, seed=0)
spec = ModelSpec("cnn", ds.input_shape, ds.num_classes, ds.mean, ds.std)
refs = build_references(ds, split, spec, TrainingRecipe(), seed=0, cache_dir="/tmp/scratch/cache", device="cpu")
data = SplitData.from_split(ds, split)
ev = UnlearningEvaluator(data, refs, RcdConfig(seeds=(0,)))
rng = np.random.default_rng(int(sys.argv[1]))
rows = []
for i in range(int(sys.argv[2])):
    p = dict(ascent_steps=int(np.exp(rng.uniform(0, np.log(200)))), lr=float(np.exp(rng.uniform(np.log(1e-3), np.log(0.3)))),
             noise_scale=float(np.exp(rng.uniform(np.log(1e-3), np.log(0.3)))), weight_decay=float(np.exp(rng.uniform(np.log(1e-3), np.log(30)))),
             retain_steps=int(rng.integers(0, 3)))
    try:
        out = run_method("ieu", refs.original(), data, p, device="cpu")
        e = ev.evaluate(out.model, out.runtime_s).metrics
    except DivergenceError as err:
        print("diverged", p); continue
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in p.items()}, {k: round(e[k], 3) for k in ("rcd", "rcd_censored", "forget_acc", "retain_acc_loss", "test_acc")}, flush=True)
