"""``minidl.nn.parallel``: data-parallel training over MPI (:class:`DistributedDataParallel`).

>>> from minidl.nn.parallel import DistributedDataParallel
"""

from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
