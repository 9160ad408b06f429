"""What mypy infers for a few public calls (tests/test_typing.py compares each
``reveal_type`` with the comment that follows it)."""

import minidl
from minidl import nn

x = minidl.tensor([1.0, 2.0])
reveal_type(x + 1)  # revealed: minidl.tensor.Tensor
reveal_type(minidl.zeros(2, 3).sum())  # revealed: minidl.tensor.Tensor
model = nn.Sequential(nn.Dense(2, 3), nn.ReLU())
reveal_type(model(x))  # revealed: Any
reveal_type(model.forward(x))  # revealed: minidl.tensor.Tensor
reveal_type(x.item())  # revealed: int | float
reveal_type(x.shape)  # revealed: tuple[int, ...]
reveal_type(list(model.parameters()))  # revealed: list[minidl.nn.module.Parameter]
reveal_type(model.train())  # revealed: minidl.nn.layers.Sequential
