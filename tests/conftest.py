"""Shared test helpers."""
from dataclasses import dataclass

import torch


@dataclass
class FakeTensors:
    """The fields of lib.core.data.Tensors the studies read (CIFAR-like images, labels, source, classes)."""
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str = "synthetic"
    n_classes: int = 4
