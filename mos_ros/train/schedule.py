"""Learning-rate schedule: linear warm-up, step decay, and its fit to a time-limited run."""
from __future__ import annotations

import logging
import time

import torch

from mos_ros.model.mos import MOS
from mos_ros.train.config import TrainConfig
from mos_ros.train.optimizers import OPTIMIZERS

LOG = logging.getLogger(__name__)
#: Every this many steps a max_minutes run re-fits its length (and lr steps) to the time left.
TIME_FIT_ITERATIONS = 50


class WarmupStepSchedule:
    """LR factor at an iteration: linear warm-up, then x gamma at each milestone.

    A class (not a lambda) so that ``LambdaLR.state_dict`` saves and restores it.
    """

    def __init__(self, warmup_iterations: int, warmup_factor: float,
                 milestones: tuple[int, ...], gamma: float):
        self.warmup_iterations = warmup_iterations
        self.warmup_factor = warmup_factor
        self.milestones = tuple(sorted(milestones))
        self.gamma = gamma

    def fit_to(self, total_iterations: int, fractions: tuple[float, ...]) -> None:
        """Move the milestones to ``fractions`` of a new run length (time-limited runs)."""
        self.milestones = tuple(sorted(int(round(f * total_iterations)) for f in fractions))

    def __call__(self, iteration: int) -> float:
        """Multiplier of the base learning rate after ``iteration`` steps."""
        decay = self.gamma ** sum(iteration >= m for m in self.milestones)
        if iteration < self.warmup_iterations:
            ramp = iteration / self.warmup_iterations
            return decay * (self.warmup_factor + (1.0 - self.warmup_factor) * ramp)
        return decay


def make_optimizer(model: MOS, config: TrainConfig, criterion: torch.nn.Module | None = None):
    """The configured optimizer over the model's trainable parameters (and the learned loss
    weights, without decay) and its schedule."""
    learned = list(criterion.parameters()) if criterion is not None else []
    trainable = [p for p in model.parameters() if p.requires_grad]
    # Learned loss weights get no weight decay: it would pull every scale towards 1.
    groups = [{"params": trainable}] + ([{"params": learned, "weight_decay": 0.0}]
                                        if learned else [])
    optimizer = OPTIMIZERS[config.optimizer](groups, config.lr, config.momentum,
                                             config.weight_decay)
    milestones = tuple(int(round(f * config.iterations)) for f in config.lr_steps)
    schedule = WarmupStepSchedule(config.warmup_iterations, config.warmup_factor,
                                  milestones, config.lr_gamma)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def affordable_iterations(config: TrainConfig, iteration: int, mark: tuple[int, float],
                          deadline: float) -> int:
    """The last iteration that ``max_minutes`` allows, from the speed since ``mark``
    (iteration, time).

    Re-computed every :data:`TIME_FIT_ITERATIONS` steps; the loop then moves the lr steps to
    match (:meth:`WarmupStepSchedule.fit_to`), so that a time-limited run on a shared machine
    still decays its learning rate at the configured fractions instead of being cut off at
    full rate.
    """
    now = time.perf_counter()
    seconds_per_iteration = (now - mark[1]) / max(iteration - mark[0], 1)
    affordable = iteration + int((deadline - now) / seconds_per_iteration)
    last = min(affordable, config.iterations)
    LOG.info("%.2f s/it: %d minutes allow %d of %d iterations", seconds_per_iteration,
             round(config.max_minutes), last, config.iterations)
    return last
