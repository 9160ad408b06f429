"""The collectives' results on every rank, checked in the script (asserts end it non-zero)."""

import numpy as np

import minidl
import minidl.distributed as dist

assert dist.init() == dist.init()  # idempotent
rank, world = dist.get_rank(), dist.get_world_size()
assert dist.is_main_process() == (rank == 0)

values = np.arange(4.0) + rank
dist.all_reduce(values)
assert (values == 4 * np.arange(4.0) * world / 4 + sum(range(world))).all(), values

tensor = minidl.tensor([float(rank), 2.0 * rank], dtype=minidl.float64)
version = tensor._version
dist.all_reduce(tensor, op=dist.ReduceOp.AVG)
assert tensor.tolist() == [(world - 1) / 2, (world - 1)], tensor
assert tensor._version > version

high = np.array([rank, -rank], dtype=np.int64)
dist.all_reduce(high, op="max")
assert high.tolist() == [world - 1, 0], high
low = np.array([float(rank)], dtype=np.float32)
dist.all_reduce(low, op=dist.ReduceOp.MIN)
assert low[0] == 0.0

strided = np.zeros((3, 4))[:, ::2]  # not contiguous
strided[...] = rank + 1
dist.all_reduce(strided)
assert (strided == world * (world + 1) / 2).all()

weights = np.arange(5.0) if rank == 0 else np.zeros(5)
dist.broadcast(weights, src=0)
assert (weights == np.arange(5.0)).all()
last = minidl.tensor([float(rank)] * 2, dtype=minidl.float64)
dist.broadcast(last, src=world - 1)
assert last.tolist() == [world - 1.0] * 2

parts = [np.empty((2, 2)) for _ in range(world)]
dist.all_gather(parts, np.full((2, 2), float(rank)))
assert [float(p[0, 0]) for p in parts] == [float(r) for r in range(world)]

work = dist.all_reduce(np.ones(2), async_op=True)
assert work.wait() and work.is_completed()

# ranks that disagree on the shape get an error naming every rank's shape
try:
    dist.all_reduce(np.ones(2 + rank))
except dist.DistributedError as error:
    assert "rank 0: shape (2,)" in str(error) and "rank 1: shape (3,)" in str(error), error
else:
    raise AssertionError("all_reduce accepted arrays of different shapes")
for bad, kind in ((np.ones(2, dtype=np.float16), TypeError), ([1.0, 2.0], TypeError)):
    try:
        dist.all_reduce(bad)
    except kind:
        pass
    else:
        raise AssertionError(f"all_reduce accepted {bad!r}")
dist.barrier()
print(f"rank {rank}: collectives ok")
