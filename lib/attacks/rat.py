"""Regularized adversarial training (RAT) of SNNs in the spirit of SNN-RAT (Ding et al., NeurIPS 2022): the defended
net paper D's Tables 1–2 compare its undefended SEW-ResNets with.

SNN-RAT (putshua/SNN-RAT, utils.py `train` and `orthogonal_retraction`) trains on adversarial examples only (no
clean term), crafted each batch with the model's BatchNorm in eval mode, and after every optimizer step applies the
Parseval retraction W ← (1 + β)·W − β·W·Wᵀ·W to the weight of every Conv2d / Linear layer (a conv's weight viewed as
[out, in·k·k]), which pulls the rows of W towards an orthonormal set and so bounds each layer's Lipschitz constant
(Cisse et al. 2017's Parseval networks). Their released CIFAR log trains with FGSM at ε = 2/255 and β = 0.004.

What this module adds to that recipe, and where it differs:
* The adversary is lib.attacks.adversarial.pgd: one step of size ε from x is FGSM (SNN-RAT's); one step of 1.25·ε
  from a uniform random start is "fast" FGSM-RAT (Wong, Rice & Kolter 2020), the cheap variant used at quick.
* It attacks the space the evaluation attacks: for a phase-coded SNN (lib.core.sew.EncodedClassifier) the encoded
  spike tensor [T, B, C, H, W], as paper D's authors attack; for a plain net (the ANN twin), the image.
* Large linear layers: SNN-RAT retracts a random 30% of the rows of a Linear layer with 200 or more rows; here every
  row of every layer is retracted (deterministic; no net of stage 07 has a layer with 200 rows or more).
The optimizer and schedule are the caller's (lib.core.sew.fit: the undefended twin's recipe, so the defence is
the only difference)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..core import sew as S
from . import adversarial as A


@torch.no_grad()
def parseval_retraction(model: nn.Module, beta: float) -> None:
    """In place, for every Conv2d / Linear weight W (a conv's viewed as [out, in·k·k]):
    W ← (1 + β)·W − β·W·Wᵀ·W (SNN-RAT's `orthogonal_retraction`, every row). β = 0 leaves the weights unchanged."""
    if beta < 0:
        raise ValueError(f"beta must be >= 0, not {beta}")
    if beta == 0:
        return
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight.reshape(m.weight.shape[0], -1)
            m.weight.copy_(((1 + beta) * w - beta * (w @ w.t()) @ w).reshape(m.weight.shape))


def orthogonality_error(model: nn.Module) -> float:
    """Σ over Conv2d / Linear layers of ‖W·Wᵀ − I‖_F (rows as above): 0 for a Parseval-tight net."""
    total = 0.0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight.detach().reshape(m.weight.shape[0], -1)
            total += float(torch.linalg.matrix_norm(w @ w.t() - torch.eye(len(w), dtype=w.dtype, device=w.device)))
    return total


@dataclass(frozen=True)
class RAT:
    """One recipe: the adversary (L∞ ε, step and iterations in units of 1/255; a uniform random start or not) and
    the Parseval β. iters = 1, step = ε, no random start: SNN-RAT's FGSM; iters = 1, step = 1.25·ε, random start:
    fast FGSM-RAT."""
    eps_255: float
    step_255: float
    iters: int
    random_start: bool
    beta: float

    def __post_init__(self):
        if not self.eps_255 > 0 or not self.step_255 > 0 or self.iters < 1 or self.beta < 0:
            raise ValueError(f"RAT needs eps_255 > 0, step_255 > 0, iters >= 1, beta >= 0; got {self}")

    def adversarial_logits(self, model: nn.Module, x: Tensor, y: Tensor, seed: int) -> Tensor:
        """The model's logits (in its current mode: train, when training) on adversarial versions of images x
        [B, C, H, W] in [0, 1], crafted under `seed` (the random start) with BatchNorm in eval mode, as SNN-RAT.
        An EncodedClassifier is attacked on its detached phase code; any other model on the image."""
        if isinstance(model, S.EncodedClassifier):
            view = S.SpikingClassifier(model.net, model.T)
            inputs = S.phase_encode(x, model.K, model.T).to(next(model.parameters()).dtype)
            batch_dim = 1
        else:
            view, inputs, batch_dim = model, x, 0
        adv = A.pgd(view, inputs, y, self.eps_255 / 255, self.step_255 / 255, self.iters,
                    random_start=self.random_start, seed=seed, bn_mode="eval", batch_dim=batch_dim)
        return view(adv.detach())

    def after_step(self, model: nn.Module) -> None:
        parseval_retraction(model, self.beta)


__all__ = ["RAT", "parseval_retraction", "orthogonality_error"]
