"""The optimizers a run may use, by their config name (``optimizer:`` in a training YAML)."""
from __future__ import annotations

from typing import Callable

import torch


def sgd(groups: list[dict], lr: float, momentum: float,
        weight_decay: float) -> torch.optim.Optimizer:
    """SGD with (heavy-ball) momentum: the paper's optimizer."""
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def adamw(groups: list[dict], lr: float, momentum: float,
          weight_decay: float) -> torch.optim.Optimizer:
    """AdamW: a step per parameter scaled by its own gradient history, so heads whose
    gradients are small beside the detection terms' still move (``momentum`` is SGD's and
    unused; AdamW keeps its own moments, betas 0.9 and 0.999)."""
    del momentum
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)


OptimizerFactory = Callable[[list[dict], float, float, float], torch.optim.Optimizer]
#: Optimizer factories by config name: (parameter groups, lr, momentum, weight decay).
OPTIMIZERS: dict[str, OptimizerFactory] = {"sgd": sgd, "adamw": adamw}
