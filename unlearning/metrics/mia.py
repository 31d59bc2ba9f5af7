"""MIA efficacy: how many forget samples a confidence-based membership classifier calls non-members.

The attack follows the SVC confidence attack used for the Unlearn-Sparse and SalUn benchmarks
(OPTML-Group): an RBF-kernel SVC (C=3, gamma="auto") is trained on the softmax probability of the
true label, with retain samples as members and test samples as non-members in equal numbers.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.svm import SVC
from torch import nn

from unlearning.splits import SplitData
from unlearning.training import predict_logits


def true_label_confidence(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Return the softmax probability that `model` gives each sample's true label."""
    probabilities = torch.softmax(predict_logits(model, x), dim=1)
    return probabilities.gather(1, y.to(probabilities.device).view(-1, 1)).squeeze(1).cpu().numpy()


def mia_efficacy(model: nn.Module, data: SplitData, *, max_samples: int = 1000, seed: int = 0) -> float:
    """Return the fraction of forget samples that the membership classifier labels non-member.

    Higher means more forgotten; the retrain model's value is the target, not 1.0.

    Args:
        model: the model under attack.
        data: the split; retain samples are members, test samples non-members.
        max_samples: members and non-members used to fit the SVC, each (default 1000); SVC
            training is quadratic in this count.
        seed: seed of the member and non-member subsamples.
    """
    rng = np.random.default_rng(seed)
    count = min(len(data.y_retain), len(data.y_test), max_samples)
    members = rng.choice(len(data.y_retain), size=count, replace=False)
    non_members = rng.choice(len(data.y_test), size=count, replace=False)

    members_index = torch.from_numpy(members)
    non_members_index = torch.from_numpy(non_members)
    member_conf = true_label_confidence(model, data.x_retain[members_index], data.y_retain[members_index])
    non_member_conf = true_label_confidence(model, data.x_test[non_members_index], data.y_test[non_members_index])

    features = np.concatenate([member_conf, non_member_conf]).reshape(-1, 1)
    labels = np.concatenate([np.ones(count), np.zeros(count)])
    classifier = SVC(C=3, gamma="auto", kernel="rbf")
    classifier.fit(features, labels)

    forget_conf = true_label_confidence(model, data.x_forget, data.y_forget).reshape(-1, 1)
    return float(1.0 - classifier.predict(forget_conf).mean())
