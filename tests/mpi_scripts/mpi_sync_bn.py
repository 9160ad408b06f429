"""DDP + SyncBatchNorm on every rank's shard of each global batch; rank 0 saves the global
losses, the final state and how far the ranks' states differ (tests/test_distributed.py).
``mpi_sync_bn.py OUT plain`` keeps the plain BatchNorm (the control that must differ)."""

import sys

import numpy as np
from common import STEPS, batches, minidl_model, shard

import minidl
import minidl.distributed as dist
from minidl import nn

out = sys.argv[1]
dist.init(timeout=60)
rank, world = dist.get_rank(), dist.get_world_size()
model = minidl_model()
if sys.argv[2:] != ["plain"]:
    model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.002)  # several buckets
optimizer = minidl.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
# the sum of the losses over this rank's samples, scaled so that DDP's average over the
# ranks is the mean over the global batch whatever the shards' sizes
loss_sum = nn.CrossEntropyLoss(reduction="sum")
losses = []
for x, y in batches(STEPS):
    local_x, local_y = shard(x, rank, world), shard(y, rank, world)
    loss = loss_sum(ddp(minidl.tensor(local_x)), minidl.tensor(local_y)) * (world / len(x))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    total = np.array([loss.item() / world])
    dist.all_reduce(total)
    losses.append(total[0])
state = {k: v.copy() for k, v in ddp.state_dict().items()}
flat = np.concatenate([v.ravel().astype(np.float64) for v in state.values()])
every = [np.empty_like(flat) for _ in range(world)]
dist.all_gather(every, flat)
spread = max(float(np.abs(other - flat).max()) for other in every)
if rank == 0:
    np.savez(out, losses=np.array(losses), spread=spread, buckets=len(ddp._buckets), **state)
