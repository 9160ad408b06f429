"""DistributedDataParallel's behaviours, asserted on every rank (tests/test_distributed.py):
no_sync accumulation, buckets started during backward, unused parameters, state dicts."""

import numpy as np

import minidl
import minidl.distributed as dist
from minidl import nn
from minidl.nn.parallel import DistributedDataParallel

dist.init(timeout=60)
rank, world = dist.get_rank(), dist.get_world_size()
minidl.manual_seed(rank)  # different initial weights on each rank: wrapping must equalize
model = nn.Sequential(nn.Dense(6, 8), nn.Tanh(), nn.Dense(8, 8), nn.Tanh(), nn.Dense(8, 2)).double()
ddp = DistributedDataParallel(model, bucket_cap_mb=100 * 8 / 2**20)  # ~100 values a bucket
flat = np.concatenate([p.numpy().ravel() for p in model.parameters()])
every = [np.empty_like(flat) for _ in range(world)]
dist.all_gather(every, flat)
assert all((e == every[0]).all() for e in every), "parameters differ after wrapping"
assert len(ddp._buckets) > 1, ddp._buckets

rng = np.random.default_rng(100 + rank)
first, second = (minidl.tensor(rng.standard_normal((5, 6))) for _ in range(2))


def local_gradients(*inputs):
    """This rank's gradient of the summed outputs over ``inputs``, without DDP."""
    model.zero_grad()
    for x in inputs:
        model(x).pow(2).sum().backward()
    return [p.grad.numpy().copy() for p in model.parameters()]


expected = [g.copy() for g in local_gradients(first, second)]
for g in expected:
    dist.all_reduce(g, op=dist.ReduceOp.AVG)

# no_sync: the first backward only accumulates; the second averages the sum
events = []
start = dist._allreduce_start


def logged_start(array):
    events.append("start")
    return start(array)


dist._allreduce_start = logged_start
model[0].weight.register_post_accumulate_grad_hook(lambda t: events.append("first layer"))
model.zero_grad()
with ddp.no_sync():
    ddp(first).pow(2).sum().backward()
assert events == ["first layer"], events
events.clear()
ddp(second).pow(2).sum().backward()
for got, want in zip((p.grad.numpy() for p in model.parameters()), expected):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
# the buckets of the later layers started before backward reached the first layer
assert events.index("start") < events.index("first layer"), events
dist._allreduce_start = start

# state dicts: no module. prefix; loading takes either spelling
state = ddp.state_dict()
assert list(state) == list(model.state_dict()), list(state)
prefixed = {f"module.{k}": v * 0 + 1 for k, v in state.items()}
ddp.load_state_dict(prefixed)
assert all((v == 1).all() for v in model.state_dict().values())
ddp.load_state_dict({k: v * 0 + 2 for k, v in state.items()})
assert all((v == 2).all() for v in model.state_dict().values())

# a parameter without a gradient: the next forward says which
unused = nn.ModuleList([nn.Dense(2, 2), nn.Dense(2, 2)]).double()


class Partial(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = unused

    def forward(self, x):
        return self.layers[0](x)


partial = DistributedDataParallel(Partial())
partial(minidl.ones(3, 2, dtype=minidl.float64)).sum().backward()
try:
    partial(minidl.ones(3, 2, dtype=minidl.float64))
except RuntimeError as error:
    assert "layers.1.weight" in str(error) and "layers.0.weight" not in str(error), error
else:
    raise AssertionError("an unused parameter went unnoticed")

# models that differ between ranks are refused when wrapped
try:
    DistributedDataParallel(nn.Dense(3, 3 + rank))
except dist.DistributedError as error:
    assert "differ" in str(error), error
else:
    raise AssertionError("DDP wrapped different models on different ranks")
print(f"rank {rank}: ddp ok")
