"""A user's training script, written as a torch user would, that must check clean under
``mypy --strict`` (tests/test_typing.py): minidl's public API is annotated well enough
that a strictly typed project needs no casts or ignores to use it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

import minidl
from minidl import Tensor, nn
from minidl.nn import functional as F
from minidl.optim.lr_scheduler import CosineAnnealingLR, StepLR


class Net(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2D(1, 4, 3, padding=1),
            nn.BatchNorm2D(4),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Dropout(0.1),
        )
        self.head = nn.Dense(4 * 4 * 4, classes)

    def forward(self, x: Tensor) -> Tensor:
        # a module's __call__ returns Any (a forward may return anything), as torch's does
        logits: Tensor = self.head(self.features(x).flatten(1))
        return logits


def accuracy(logits: Tensor, labels: Tensor) -> float:
    predicted = logits.argmax(dim=1)
    return float((predicted == labels).float().mean().item())


def main() -> None:
    minidl.manual_seed(0)
    minidl.set_num_threads(1)
    x = minidl.randn(8, 1, 8, 8)
    labels = minidl.tensor(np.arange(8) % 10)
    model = Net()
    optimizer = minidl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    schedule = StepLR(optimizer, step_size=2, gamma=0.5)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(3):
        optimizer.zero_grad()
        logits = model(x)
        loss = loss_fn(logits, labels)
        loss.backward()
        optimizer.step()
        schedule.step()
    print(f"loss {loss.item():.4f}, accuracy {accuracy(model(x), labels):.2f}")
    print(schedule.get_last_lr())

    dataset = minidl.data.ArrayDataset(np.zeros((8, 1, 8, 8), np.float32), np.arange(8) % 10)
    loader = minidl.data.DataLoader(dataset, batch_size=4, shuffle=True, seed=0)
    nn.init.kaiming_normal_(model.head.weight, nonlinearity="relu")
    for images, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(minidl.tensor(images)), minidl.tensor(targets)).backward()
        total_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
    print(len(loader), float(total_norm.item()))

    adam = minidl.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    cosine = CosineAnnealingLR(adam, T_max=10)
    adam.zero_grad()
    F.cross_entropy(model(x), labels).backward()
    adam.step()
    cosine.step()

    model.eval()
    with minidl.no_grad():
        y = F.relu(model(x) * 2.0 + 1.0)
    print(y.shape, y.dtype, y.numpy().sum())

    a = minidl.zeros(2, 3) + minidl.ones((2, 3)) * 2
    b = minidl.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    c = (a @ b.T).sum()
    c.backward()
    assert b.grad is not None
    print(b.grad.tolist(), minidl.arange(5).reshape(5, 1).shape)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.npz"
        minidl.save(model.state_dict(), path)
        state = minidl.load(path)
        copy = Net()
        copy.load_state_dict(state)
        optimizer_state = optimizer.state_dict()
        optimizer.load_state_dict(optimizer_state)
    copy.train()
    print(sum(p.numel() for p in copy.parameters()))
    for name, parameter in copy.named_parameters():
        print(name, tuple(parameter.shape))
    minidl.show_config()


if __name__ == "__main__":
    main()
