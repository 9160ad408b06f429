"""The Trainer under mpiexec with DDP + SyncBatchNorm (tests/test_distributed.py).

``fit DIR EPOCHS``: train from the initial weights; ``resume DIR EPOCHS``: resume from
DIR/single.npz (a single-process checkpoint) first; ``nan DIR``: rank 1's second batch
holds a NaN; ``stop DIR``: a callback stops rank 1 alone after the third step. Rank 0
writes DIR/dist.npz (final state) and DIR/dist.json (history, steps reached)."""

import json
import sys

import numpy as np
from common import make_trainer, minidl_model, trainer_data

import minidl
import minidl.distributed as dist
from minidl import nn
from minidl.data import ArrayDataset, DataLoader, DistributedSampler

mode, workdir = sys.argv[1], sys.argv[2]
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 2
dist.init(timeout=60)
rank = dist.get_rank()
x, y, val_x, val_y = trainer_data()
if mode == "nan" and rank == 1:
    x = x.copy()
    x[129] = np.nan  # rank 1 reads the odd samples: its second batch holds a NaN
dataset = ArrayDataset(x, y)
train = DataLoader(dataset, batch_size=64, sampler=DistributedSampler(dataset, shuffle=False))
val = DataLoader(ArrayDataset(val_x, val_y), batch_size=32)
model = nn.parallel.DistributedDataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(minidl_model()))


class StopRankOne(minidl.train.Callback):
    def on_batch_end(self, step, logs=None):
        if rank == 1 and self.trainer.global_step == 3:
            self.trainer.stop_training = True


extra = [StopRankOne()] if mode == "stop" else []
trainer = make_trainer(model, workdir if mode in ("fit", "resume") else None, extra)
if mode == "resume":
    trainer.resume(f"{workdir}/single.npz")
error = None
try:
    trainer.fit(train, epochs=epochs, val_data=val)
except minidl.train.NonFiniteLossError as caught:
    error = str(caught)
steps = np.array([trainer.global_step], dtype=np.int64)
every = [np.empty_like(steps) for _ in range(dist.get_world_size())]
dist.all_gather(every, steps)
if rank == 0:
    np.savez(f"{workdir}/dist.npz", **model.state_dict())
    report = {
        "history": trainer.history.to_dict(),
        "steps": [int(s[0]) for s in every],
        "error": error,
        "evaluate": trainer.evaluate(val),
    }
    with open(f"{workdir}/dist.json", "w") as handle:
        json.dump(report, handle)
else:
    trainer.evaluate(val)  # every rank takes part in the sharded evaluation
