"""Data-parallel training on one machine: 1 process x 2 threads against 2 processes x 1 thread.

    python benchmarks/bench_distributed.py [--rounds 3] [--batch 128] [--steps 10] [--quick]
    python benchmarks/bench_distributed.py --cost-model

Measured: the training throughput of the example CNN with BatchNorm
(``minidl.models.small_cnn``, SGD with momentum, MNIST-sized random data) at a
global batch of ``--batch`` images, run (a) by one process with 2 kernel threads
on the whole batch and (b) by ``mpiexec -n 2``, one kernel thread per rank, each
rank on half the batch, with ``SyncBatchNorm`` and ``DistributedDataParallel``
(whose step includes the collectives); then, in the 2-rank world, the time of
one all-reduce (minidl.distributed's, float32, summed in place) against its size,
the example models' gradient sizes among them, and how long a DDP step waits for
its gradient all-reduces. Each configuration runs in fresh processes, the two
alternating from round to round; the tables give the median over rounds of the
best step time of each round.

``--cost-model`` prints the model of docs/distributed.md instead (no
measurement): each step's communication volume for the example models and the
ring all-reduce time at 10 and 100 Gbit/s for 2 to 64 ranks.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

# isort: off
import harness
import minidl

import numpy as np

# isort: on

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIZES = [2**k for k in range(10, 25, 2)]  # float32 values: 4 KiB to 64 MiB


def _mpiexec():
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.path.exists(beside) else shutil.which("mpiexec")


def _model_and_step(threads, batch, distributed):
    from minidl import models, nn

    minidl.set_num_threads(threads)
    minidl.manual_seed(0)
    model = models.small_cnn(batch_norm=True)
    if distributed:
        model = nn.parallel.DistributedDataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(model))
    optimizer = minidl.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(1)
    inputs = minidl.tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
    targets = minidl.tensor(rng.integers(0, 10, batch))

    def step():
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return model, step


def _best_step(step, steps, repeats=3, barrier=None):
    """Best over ``repeats`` of the mean time of ``steps`` steps, after two warm-up steps."""
    step()
    step()
    best = float("inf")
    for _ in range(repeats):
        if barrier is not None:
            barrier()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def worker_single(args):
    _, step = _model_and_step(2, args.batch, distributed=False)
    print(json.dumps({"step": _best_step(step, args.steps)}))


def worker_ranks(args):
    import minidl.distributed as dist
    from minidl.nn.parallel import distributed as ddp_module

    dist.init(timeout=300)
    world, rank = dist.get_world_size(), dist.get_rank()
    model, step = _model_and_step(1, args.batch // world, distributed=True)
    # the time a step spends waiting for its gradient all-reduces (DDP's _finish)
    waited = [0.0, 0]
    finish = ddp_module.DistributedDataParallel._finish

    def timed_finish(self):
        start = time.perf_counter()
        finish(self)
        waited[0] += time.perf_counter() - start
        waited[1] += 1

    ddp_module.DistributedDataParallel._finish = timed_finish
    result = {"step": _best_step(step, args.steps, barrier=dist.barrier)}
    result["wait"] = waited[0] / waited[1]
    gradient = sum(p.numpy().size for p in model.parameters())
    result["gradient_values"] = gradient
    result["buckets"] = len(model._buckets)
    sizes = [2**10] if args.quick else SIZES
    allreduce = {}
    for size in [*sizes, gradient]:
        buffer = np.ones(size, dtype=np.float32)

        def reduce(buffer=buffer):
            dist._allreduce_sum(buffer, "bench")

        allreduce[size] = _best_step(reduce, 3 if size > 2**22 else 20, barrier=dist.barrier)
    result["allreduce"] = allreduce
    if rank == 0:
        print(json.dumps(result))


def _run(command, env):
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(args):
    mpiexec = _mpiexec()
    if mpiexec is None:
        raise SystemExit('bench_distributed: mpiexec not found; pip install "minidl[distributed]"')
    env = dict(os.environ, OMP_NUM_THREADS="2")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    options = ["--batch", str(args.batch), "--steps", str(args.steps)]
    options += ["--quick"] if args.quick else []
    single = [sys.executable, __file__, "--worker", "single", *options]
    ranks = [mpiexec, "-n", "2", sys.executable, __file__, "--worker", "ranks", *options]
    rank_env = dict(env, OMP_NUM_THREADS="1")
    before = harness.load_average()
    rounds = []
    for index in range(args.rounds):
        runs = [("single", single, env), ("ranks", ranks, rank_env)]
        if index % 2:
            runs.reverse()
        rounds.append({name: _run(command, e) for name, command, e in runs})
        print(f"round {index + 1}/{args.rounds}, load average {harness.load_average()}")
    return rounds, before, harness.load_average()


def report(args, rounds, before, after):
    def median(values):
        return statistics.median(values)

    batch = args.batch
    single = [r["single"]["step"] for r in rounds]
    ranks = [r["ranks"]["step"] for r in rounds]
    ratios = [r["single"]["step"] / r["ranks"]["step"] for r in rounds]
    waits = [r["ranks"]["wait"] for r in rounds]
    print(
        f"\nrounds: {len(rounds)} (each the best of 3 x {args.steps} steps); load average "
        f"{before} before, {after} after"
    )
    print(f"\nCNN-BN training step (small_cnn, SGD momentum), global batch {batch}, float32:\n")
    print("| configuration | step (ms) | images/s | speed-up |")
    print("| --- | --- | --- | --- |")
    print(
        f"| 1 process x 2 threads, batch {batch} | {median(single) * 1e3:.1f} | "
        f"{batch / median(single):,.0f} | 1.00 |"
    )
    low, high = min(ratios), max(ratios)
    print(
        f"| 2 processes x 1 thread, batch {batch // 2} each (DDP + SyncBatchNorm) | "
        f"{median(ranks) * 1e3:.1f} | {batch / median(ranks):,.0f} | "
        f"{median(ratios):.2f} [{low:.2f}, {high:.2f}] |"
    )
    last = rounds[-1]["ranks"]
    print(
        f"\nof the 2-process step: {median(waits) * 1e3:.2f} ms waiting for the gradient "
        f"all-reduce ({last['gradient_values']:,} float32 values, {last['buckets']} bucket(s))"
    )
    print("\nall-reduce (2 processes, float32, in place) against its size:\n")
    print("| values | bytes | time (ms) | bytes / time (GB/s) |")
    print("| --- | --- | --- | --- |")
    for size in rounds[0]["ranks"]["allreduce"]:
        seconds = median(r["ranks"]["allreduce"][size] for r in rounds)
        size = int(size)
        print(f"| {size:,} | {4 * size:,} | {seconds * 1e3:.3f} | {4 * size / seconds / 1e9:.2f} |")


# The compute side of the model: one process's step on the 2-core development machine (2
# threads, float32): the CNN-BN step at batch 128 measured 74.6 ms by this script's full run
# (0.58 ms an image; it grows linearly with the batch, bench_train_step.py); the MLP-BN
# step is 1.6 ms at batch 60 (bench_train_step.py), ~0.5 ms of it Python overhead that does
# not shrink with the batch. (fixed ms, ms an image, global batch)
COMPUTE = {"mlp": (0.5, 1.1 / 60, 60), "cnn": (0.0, 74.6 / 128, 128)}
LATENCY = {10: 20e-6, 100: 3e-6}  # seconds a message step costs (assumed, see the page)
RANKS = [2, 4, 8, 16, 32, 64]


def ring_allreduce(size, ranks, gbits):
    """Seconds of a ring all-reduce of ``size`` bytes over ``ranks`` at ``gbits`` Gbit/s."""
    bandwidth = gbits * 1e9 / 8
    return 2 * (ranks - 1) / ranks * size / bandwidth + 2 * (ranks - 1) * LATENCY[gbits]


def cost_model():
    """The ring all-reduce model of docs/distributed.md for the example models."""
    from minidl import models

    sizes = {
        "mlp": 4 * sum(p.numel() for p in models.bn_paper_mlp().parameters()),
        "cnn": 4 * sum(p.numel() for p in models.small_cnn().parameters()),
    }
    names = {"mlp": "BN-paper MLP", "cnn": "small CNN-BN"}
    head = " | ".join(f"p={p}" for p in RANKS)
    rule = " | ".join("---" for _ in RANKS)
    print("A model, not a measurement. Ring all-reduce of the float32 gradients (S bytes):")
    print("t(p) = 2 (p - 1) / p * S / B + 2 (p - 1) * a, a = 20 us at 10 Gbit/s, 3 us at 100.\n")
    print(f"| model | S (bytes) | Gbit/s | {head} |")
    print(f"| --- | --- | --- | {rule} |")
    for kind, size in sizes.items():
        for gbits in (10, 100):
            cells = " | ".join(f"{ring_allreduce(size, p, gbits) * 1e3:.2f} ms" for p in RANKS)
            print(f"| {names[kind]} | {size:,} | {gbits} | {cells} |")
    print("\nSpeed-up over one process at a fixed global batch (strong scaling), with the step")
    print("c(p) = fixed + per-image * batch / p and the all-reduce not overlapped:")
    print("speed-up = c(1) / (c(p) + t(p)).\n")
    print(f"| model, global batch | Gbit/s | {head} |")
    print(f"| --- | --- | {rule} |")
    for kind, size in sizes.items():
        fixed, per_image, batch = COMPUTE[kind]
        alone = fixed + per_image * batch
        for gbits in (10, 100):
            cells = []
            for p in RANKS:
                step = fixed + per_image * batch / p + ring_allreduce(size, p, gbits) * 1e3
                cells.append(f"{alone / step:.1f}x")
            print(f"| {names[kind]}, {batch} | {gbits} | {' | '.join(cells)} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=("single", "ranks"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128, help="global batch (even)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="one round, small: a smoke test")
    parser.add_argument("--cost-model", action="store_true", help="print the model, no runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.batch, args.steps = 1, 16, 2
    if args.cost_model:
        cost_model()
    elif args.worker == "single":
        worker_single(args)
    elif args.worker == "ranks":
        worker_ranks(args)
    else:
        report(args, *measure(args))


if __name__ == "__main__":
    main()
