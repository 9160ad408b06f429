"""Faults under mpiexec: ``raise`` ends every rank; ``timeout``: a rank that does not
arrive at a collective makes the others fail with a clear error within the timeout."""

import sys
import time

import numpy as np

import minidl.distributed as dist

mode = sys.argv[1]
dist.init(timeout=float(sys.argv[2]) if len(sys.argv) > 2 else 60)
rank = dist.get_rank()
dist.barrier()
if mode == "raise":
    if rank == 1:
        raise RuntimeError("rank 1 failed on purpose")
    while True:  # the other ranks go on into collectives rank 1 never joins
        dist.all_reduce(np.ones(3))
elif mode == "timeout":
    if rank == 1:
        time.sleep(120)
    dist.all_reduce(np.ones(3))
