"""``minidl.utils``: the place of ``torch.utils``; ``minidl.utils.data`` is ``torch.utils.data``.

>>> from minidl.utils.data import DataLoader, TensorDataset
>>> DataLoader is minidl.data.DataLoader
True
"""

from . import data

__all__ = ["data"]
