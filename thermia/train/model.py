"""The one classifier that the target and every shadow share."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class ThermalCNN(nn.Module):
    """Three convolution blocks and a small dense head.

    Input ``(batch, 1, height, width)``; output logits ``(batch, n_classes)``.
    The head keeps a coarse spatial map (4 × 4) rather than a global average,
    so the network can tell where on the face a temperature change happens.
    """

    def __init__(self, n_classes: int, channels: int = 8) -> None:
        super().__init__()
        c = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1),
            nn.BatchNorm2d(c),
            nn.LeakyReLU(0.1),
            nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1),
            nn.BatchNorm2d(2 * c),
            nn.LeakyReLU(0.1),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * c, 4 * c, 3, padding=1),
            nn.BatchNorm2d(4 * c),
            nn.LeakyReLU(0.1),
            nn.AdaptiveAvgPool2d((4, 4)),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(4 * c * 16, 64),
            nn.LeakyReLU(0.1),
            nn.Linear(64, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ThermalClassifier(pl.LightningModule):
    """Cross-entropy training of :class:`ThermalCNN` with Adam at a fixed rate.

    The learning rate does not decay, so the model after ``e`` epochs of a
    longer run is the model of an ``e``-epoch run with the same seed.
    """

    def __init__(
        self,
        n_classes: int,
        channels: int = 8,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = ThermalCNN(n_classes, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(dim=1) == y).float().mean()
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        self.log("train_acc", acc, on_step=False, on_epoch=True)
        return loss

    def predict_step(self, batch, batch_idx):
        return self(batch[0])

    def configure_optimizers(self):
        return torch.optim.Adam(
            self.parameters(),
            lr=self.hparams.learning_rate,
            weight_decay=self.hparams.weight_decay,
        )
