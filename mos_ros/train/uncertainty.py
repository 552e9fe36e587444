"""Uncertainty multi-task loss (UML), Eq. 7 of the MOS paper (section 3.2.2).

The four task losses are weighted by quantities learned with the network, derived from the
likelihood of each task's output:

* classification, a Boltzmann (softmax) likelihood with temperature ``T``
  (Eq. 4 and 5): ``L_cls / T**2 + log T``;
* each regression (box, landmarks, pose), a Gaussian likelihood with observation noise
  ``sigma`` (Eq. 6): ``L_reg / (2 sigma**2) + log sigma``.

Summed (Eq. 7)::

    L* = L_cls / T1**2 + L_box / (2 s1**2) + L_pts / (2 s2**2) + L_pose / (2 s3**2)
         + log(T1 * s1 * s2 * s3)

A task whose loss is large (noisy) gets a larger ``T`` or ``sigma`` and so a smaller weight; the
``log`` term keeps the scales from growing without bound. For a constant task loss ``L`` the
optimum of ``c * exp(-2 s) * L + s`` (``s`` the log scale, ``c`` 1 or 1/2) is where the task's
effective weight ``c * exp(-2 s)`` equals ``1 / (2 L)``.

The learned values are log scales ``s = (log T1, log s1, log s2, log s3)`` (unconstrained and
positive scales by construction). They start where the effective weights equal the fixed
heuristic weights of :class:`~mos_ros.train.loss.LossConfig`, so switching the weighting on does
not change the loss at the first step. They are optimised by the trainer's SGD together with
the model, without weight decay (decay would pull every scale towards 1), and logged to the
metrics CSV as ``weight_*``, ``temperature`` and ``sigma_*``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

#: Task order of the weights and scales.
TASKS = ("cls", "box", "landmarks", "pose")
#: ``1 / T**2`` for classification, ``1 / (2 sigma**2)`` for each regression task.
LIKELIHOOD_FACTORS = (1.0, 0.5, 0.5, 0.5)
#: Names under which the scales are logged, in task order.
SCALE_NAMES = ("temperature", "sigma_box", "sigma_landmarks", "sigma_pose")


def log_scales_for_weights(weights: tuple[float, ...]) -> list[float]:
    """Log scales at which the effective weights ``factor * exp(-2 s)`` equal ``weights``."""
    if len(weights) != len(TASKS) or min(weights) <= 0:
        raise ValueError(f"need {len(TASKS)} positive task weights, got {weights}")
    return [-0.5 * math.log(w / f) for w, f in zip(weights, LIKELIHOOD_FACTORS)]


class UncertaintyWeighting(nn.Module):
    """Eq. 7 as a module: the task terms in, the uncertainty-weighted total out."""

    def __init__(self, initial_weights: tuple[float, float, float, float]):
        super().__init__()
        #: (log T1, log sigma1, log sigma2, log sigma3): the learned parameters.
        self.log_scales = nn.Parameter(torch.tensor(log_scales_for_weights(initial_weights),
                                                    dtype=torch.float32))
        self.register_buffer("factors", torch.tensor(LIKELIHOOD_FACTORS, dtype=torch.float32))

    def weights(self) -> Tensor:
        """Effective weights ``1/T1**2, 1/(2 s1**2), 1/(2 s2**2), 1/(2 s3**2)``."""
        return self.factors * torch.exp(-2.0 * self.log_scales)

    def forward(self, cls: Tensor, box: Tensor, landmarks: Tensor, pose: Tensor) -> Tensor:
        """``sum_k weight_k * L_k + log(T1 s1 s2 s3)`` (Eq. 7)."""
        terms = torch.stack([cls, box, landmarks, pose]).float()
        return (self.weights() * terms).sum() + self.log_scales.sum()

    def extras(self) -> dict[str, Tensor]:
        """Effective weights and the scales themselves, detached, for logging."""
        weights = self.weights().detach()
        scales = torch.exp(self.log_scales.detach())
        logged = {f"weight_{task}": weights[i] for i, task in enumerate(TASKS)}
        logged.update({name: scales[i] for i, name in enumerate(SCALE_NAMES)})
        return logged
