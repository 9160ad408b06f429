"""The same DDP training (BatchNorm, not synchronized) in minidl or in PyTorch (gloo, CPU),
launched by mpiexec: ``minidl OUT`` or ``torch OUT PORT``. Every rank saves its losses and
final state to OUT-<rank>.npz (tests/test_distributed.py compares the two libraries)."""

import os
import sys

import numpy as np
from common import STEPS, batches, build, initial_state, shard

library, out = sys.argv[1], sys.argv[2]
rank, world = int(os.environ["PMI_RANK"]), int(os.environ["PMI_SIZE"])


def train(ddp, optimizer, loss_fn, as_tensor):
    """The same steps in either library: each rank on its shard of every global batch."""
    losses = []
    for x, y in batches(STEPS):
        local_x, local_y = shard(x, rank, world), shard(y, rank, world)
        loss = loss_fn(ddp(as_tensor(local_x)), as_tensor(local_y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


if library == "torch":
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{sys.argv[3]}", rank=rank, world_size=world
    )
    model = build(torch.nn).double()
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in initial_state().items()})
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    losses = train(ddp, optimizer, torch.nn.CrossEntropyLoss(), torch.from_numpy)
    state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    dist.destroy_process_group()
else:
    import minidl
    import minidl.distributed as dist
    from minidl.nn.parallel import DistributedDataParallel

    minidl.set_num_threads(1)
    dist.init(timeout=60)
    assert (dist.get_rank(), dist.get_world_size()) == (rank, world)
    model = build(minidl.nn).double()
    model.load_state_dict(initial_state())
    ddp = DistributedDataParallel(model)
    optimizer = minidl.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    losses = train(ddp, optimizer, minidl.nn.CrossEntropyLoss(), minidl.tensor)
    state = {k: v.copy() for k, v in model.state_dict().items()}
np.savez(f"{out}-{rank}.npz", losses=np.array(losses), **state)
