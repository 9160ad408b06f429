"""Train on MNIST-style digits with and without batch normalization, side by side.

    python examples/train_mnist.py                      # the MLP of Ioffe & Szegedy, BN vs none
    python examples/train_mnist.py --model cnn          # a small CNN, BN vs none
    python examples/train_mnist.py --model cnn --bn --dataset fashion-mnist --epochs 10
    python examples/train_mnist.py --quick              # a few seconds, for smoke tests
    mpiexec -n 2 python examples/train_mnist.py --distributed --model cnn --bn

Data: ``--dataset auto`` (the default) uses MNIST where it is found or can be
downloaded (see ``minidl.data.datasets`` for where files are looked for;
``MINIDL_DATA`` points at a folder of data sets, ``--data-dir`` at one holding the
files), else the MNIST sample bundled with minidl (6,000 training and 1,000 test
images), saying so. ``--dataset mnist`` insists on the full set: when it is missing
the script lists the places searched and the fixes, and exits with status 1.

The script prints each model's summary, a progress bar and a line per epoch, then
a table comparing the runs: test accuracy and loss, time per epoch, and the
training steps each took to reach a target test accuracy. With matplotlib installed
it also draws the learning curves.

``--distributed`` (under ``mpiexec -n N``, ``srun`` or another MPI launcher; needs
``pip install "minidl[distributed]"``) trains data-parallel: every rank reads its
shard of the training set (``DistributedSampler``) in batches of ``--batch-size``,
so the global batch is N times that; BatchNorm layers become ``SyncBatchNorm``;
gradients are averaged by ``DistributedDataParallel``; rank 0 alone prints and
writes. See docs/distributed.md.
"""

# isort: off
import minidl  # before numpy: minidl tunes OpenBLAS's threads, which numpy loads

import argparse
import os
import sys
import time

import numpy as np

from minidl import models, nn
from minidl.data import datasets, transforms

# isort: on

MODELS = ("mlp", "cnn")
# Defaults per model: the MLP as in the paper's Figure 1 (batch 60, plain SGD),
# the CNN with Adam; both with the learning rate annealed to 0 on a cosine.
DEFAULTS = {
    "mlp": {
        "epochs": 30,
        "batch_size": 60,
        "optimizer": "sgd",
        "lr": 0.5,
        "eval_every": 250,
        "label_smoothing": 0.0,
    },
    "cnn": {
        "epochs": 10,
        "batch_size": 64,
        "optimizer": "adam",
        "lr": 1e-3,
        "eval_every": 470,
        "label_smoothing": 0.1,
    },
}
TARGETS = {
    ("mlp", "mnist"): 0.97,
    ("cnn", "mnist"): 0.99,
    ("mlp", "mnist-sample"): 0.90,
    ("cnn", "mnist-sample"): 0.98,
}
# test accuracy whose first step is reported, where TARGETS has none
OTHER_TARGET = {"mlp": 0.90, "cnn": 0.92}
QUICK_TRAIN, QUICK_TEST = 6000, 1000


def build_model(kind, bn):
    """The Figure 1 MLP or the small CNN, from ``minidl.models``."""
    return models.bn_paper_mlp(batch_norm=bn) if kind == "mlp" else models.small_cnn(batch_norm=bn)


def make_optimizer(name, parameters, lr):
    if name == "sgd":
        return minidl.optim.SGD(parameters, lr=lr)
    if name == "momentum":
        return minidl.optim.SGD(parameters, lr=lr, momentum=0.9)
    if name == "adam":
        return minidl.optim.Adam(parameters, lr=lr)
    if name == "adamw":
        return minidl.optim.AdamW(parameters, lr=lr)
    if name == "rmsprop":
        return minidl.optim.RMSprop(parameters, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}")


def load_data(name, data_dir, quick, normalize_train=True):
    """Train and test datasets, standardized; ``quick`` keeps the first 6,000 and 1,000.

    With ``normalize_train=False`` the training images stay in [0, 1], for an
    augmentation that must see the zero background before standardizing.
    """
    train = datasets.open_dataset(name, "train", data_dir, normalize=normalize_train)
    test = datasets.open_dataset(name, "test", data_dir, normalize=True)
    if quick:  # the bundled sample is these same images: --quick gives the same on both
        train = minidl.data.Subset(train, np.arange(min(QUICK_TRAIN, len(train))))
        test = minidl.data.Subset(test, np.arange(min(QUICK_TEST, len(test))))
    return train, test


def augmentation(dataset):
    """Random shifts of up to 2 pixels (and, for clothes, mirroring), then standardizing."""
    steps = [transforms.RandomShift(2)]
    if dataset == "fashion-mnist":
        steps.append(transforms.RandomHorizontalFlip())
    spec = datasets.DATASETS[dataset]
    return transforms.Compose([*steps, transforms.Normalize(spec.mean, spec.std)])


def say(*values):
    """print, on rank 0 only when training data-parallel."""
    if minidl.distributed.is_main_process():
        print(*values)


def distribute(model, bn):
    """The model for data-parallel training: SyncBatchNorm for BatchNorm, wrapped in DDP."""
    if bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return nn.parallel.DistributedDataParallel(model)


def start_distributed():
    """Join the MPI world; one kernel thread per core for each rank on this machine."""
    from minidl import distributed

    world = distributed.init()
    # ranks on this machine: mpiexec (hydra), Open MPI and Slurm each say it in their own way
    local = next(
        (
            int(os.environ[name])
            for name in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE")
            if os.environ.get(name, "").isdigit()
        ),
        world,
    )
    minidl.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    return world


def train_one(args, dataset, bn, train, test, target):
    """Train one variant; returns its figures."""
    minidl.manual_seed(args.seed)
    model = build_model(args.model, bn)
    label = f"{args.model.upper()} {'with' if bn else 'without'} BatchNorm"
    say(f"\n=== {label} on {dataset}")
    if minidl.distributed.is_main_process():
        model.summary((1, 28, 28))
    sampler = None
    if args.distributed:
        model = distribute(model, bn)
        # every rank reads its own shard, a new order each epoch (the Trainer sets the epoch)
        sampler = minidl.data.DistributedSampler(train, shuffle=True, seed=args.seed)
    optimizer = make_optimizer(args.optimizer, model.parameters(), args.lr)
    transform = augmentation(dataset) if args.augment else None
    loader = minidl.data.DataLoader(
        train,
        batch_size=args.batch_size,
        shuffle=sampler is None,
        transform=transform,
        sampler=sampler,
    )
    test_loader = minidl.data.DataLoader(test, batch_size=1000)
    tracker = minidl.train.PeriodicEvaluation(test_loader, every=args.eval_every)
    schedule = None
    if args.schedule == "cosine":  # annealed to 0 over the whole run, stepped per batch
        schedule = minidl.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=args.epochs * len(loader)
        )
    trainer = minidl.Trainer(
        model,
        optimizer,
        loss=nn.CrossEntropyLoss(label_smoothing=args.label_smoothing),
        metrics=["accuracy"],
        scheduler=schedule,
        scheduler_interval="step",
        callbacks=[tracker],
        verbose=args.verbose,
    )
    start = time.perf_counter()
    history = trainer.fit(loader, epochs=args.epochs, val_data=test_loader)
    elapsed = time.perf_counter() - start
    final = trainer.evaluate(test_loader)
    if args.save and minidl.distributed.is_main_process():
        root, extension = os.path.splitext(args.save)
        path = args.save
        if args.variant == "compare":  # one file per variant
            path = f"{root}-{'bn' if bn else 'plain'}{extension or '.npz'}"
        minidl.save(dict(model.state_dict()), path)  # a DDP model's has no module. prefix
        print(f"saved the weights to {path}")
    return {
        "label": label,
        "bn": bn,
        "accuracy": final["accuracy"],
        "loss": final["loss"],
        "epoch_time": float(np.mean([r["time"] for r in history.epochs])),
        "wall_time": elapsed,
        "steps_to_target": tracker.steps_to("accuracy", target),
        "curve": tracker.records,
        "history": history,
    }


def print_table(results, target, dataset):
    print(f"\n{dataset} test set ({results[0]['label'].split()[0]}), target accuracy {target:.1%}:")
    header = f"{'model':28s}{'test accuracy':>15s}{'test loss':>11s}{'s/epoch':>9s}"
    header += f"{'steps to target':>17s}"
    print(header)
    print("-" * len(header))
    for r in results:
        steps = "not reached" if r["steps_to_target"] is None else f"{r['steps_to_target']:,}"
        print(
            f"{r['label']:28s}{r['accuracy']:>15.4f}{r['loss']:>11.4f}"
            f"{r['epoch_time']:>9.1f}{steps:>17s}"
        )


def plot_curves(results, path, target):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        print("(matplotlib is not installed: no learning-curve figure; pip install matplotlib)")
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for r in results:
        steps = [c["step"] for c in r["curve"]]
        left.plot(steps, [c["accuracy"] for c in r["curve"]], label=r["label"])
        right.plot(
            [e["epoch"] for e in r["history"].epochs],
            [e["loss"] for e in r["history"].epochs],
            marker="o",
            label=r["label"],
        )
    left.axhline(target, color="grey", linestyle=":", label=f"target {target:.0%}")
    left.set_xlabel("training steps")
    left.set_ylabel("test accuracy")
    lowest = min((c["accuracy"] for r in results for c in r["curve"]), default=target)
    left.set_ylim(max(0.0, min(lowest, target) - 0.05), 1.0)  # every curve in view
    left.legend()
    right.set_xlabel("epoch")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_ylabel("training loss")
    right.set_yscale("log")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    print(f"learning curves: {path}")
    return path


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default after its help, unless the help already states it."""

    def _get_help_string(self, action):
        if "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _per_model(key, what):
    """Help text for an option whose default depends on --model."""
    mlp, cnn = DEFAULTS["mlp"][key], DEFAULTS["cnn"][key]
    return f"{what} (default: {mlp} for the MLP, {cnn} for the CNN)"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=HelpFormatter
    )
    parser.add_argument("--model", choices=MODELS, default="mlp", help="the network to train")
    variant = parser.add_mutually_exclusive_group()
    variant.add_argument(
        "--bn",
        dest="variant",
        action="store_const",
        const="bn",
        help="train only the BatchNorm variant (default: both, as --compare)",
    )
    variant.add_argument(
        "--no-bn",
        dest="variant",
        action="store_const",
        const="plain",
        help="train only the variant without BatchNorm (default: both, as --compare)",
    )
    variant.add_argument(
        "--compare",
        dest="variant",
        action="store_const",
        const="compare",
        help="train both, the same seed, side by side (default: this)",
    )
    parser.set_defaults(variant="compare")
    parser.add_argument(
        "--dataset",
        choices=("auto", *datasets.CLASSES),
        default="auto",
        help="auto: MNIST where it is found or can be downloaded, else the bundled sample",
    )
    parser.add_argument("--epochs", type=int, help=_per_model("epochs", "training epochs"))
    parser.add_argument(
        "--batch-size", type=int, help=_per_model("batch_size", "training batch size")
    )
    parser.add_argument("--lr", type=float, help=_per_model("lr", "learning rate"))
    parser.add_argument(
        "--optimizer",
        choices=("sgd", "momentum", "adam", "adamw", "rmsprop"),
        help=_per_model("optimizer", "optimizer"),
    )
    parser.add_argument(
        "--schedule",
        choices=("cosine", "constant"),
        default="cosine",
        help="learning rate: annealed to 0 on a cosine, or constant",
    )
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random 2-pixel shifts (and flips for Fashion-MNIST) while "
        "training (default: on for the CNN, off for the MLP)",
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        help=_per_model("label_smoothing", "cross-entropy label smoothing"),
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the order")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="a folder holding the data set's files, searched first "
        "(default: none; then $MINIDL_DATA/<name>, the cache, /usr/share/datasets)",
    )
    parser.add_argument(
        "--save",
        metavar="PATH",
        help="save the trained weights (minidl.save) (default: none, not saved)",
    )
    parser.add_argument(
        "--plot",
        metavar="PATH",
        help="learning-curve PNG (default: <model>_<dataset>_curves.png in the working folder)",
    )
    parser.add_argument(
        "--eval-every",
        type=int,
        help=_per_model("eval_every", "evaluate on the test set every N steps"),
    )
    parser.add_argument(
        "--target",
        type=float,
        help="test accuracy whose first step is reported (default: 97%%/99%% for the MLP/CNN "
        "on MNIST, 90%%/98%% on the sample, else 90%%/92%%)",
    )
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="0 silent, 1 progress bars, 2 one line per epoch",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the first 6,000 training and 1,000 test images, 1 epoch: a smoke test",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over MPI: run under mpiexec -n N; --batch-size is per rank",
    )
    args = parser.parse_args(argv)
    if args.dataset == "mnist-sample" and args.data_dir is not None:
        parser.error("--data-dir does not apply to --dataset mnist-sample (it ships with minidl)")
    if args.augment is None:
        args.augment = args.model == "cnn"
    for key, value in DEFAULTS[args.model].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.quick:
        args.epochs = 1
        args.eval_every = min(args.eval_every, 50)
    return args


def main(argv=None):
    args = parse_args(argv)
    world = start_distributed() if args.distributed else 1
    try:
        dataset = datasets.choose_dataset(
            args.dataset, args.data_dir, sample_fallback=True, data_dir_option="--data-dir"
        )
    except (FileNotFoundError, minidl.CorruptFileError) as error:
        sys.exit(str(error))  # the places searched and the fixes, without a traceback
    target = args.target or TARGETS.get((args.model, dataset), OTHER_TARGET[args.model])
    train, test = load_data(dataset, args.data_dir, args.quick, normalize_train=not args.augment)
    batch = f"batch {args.batch_size}"
    if args.distributed:
        batch = f"{world} ranks x batch {args.batch_size} (global {world * args.batch_size})"
    say(
        f"{dataset}: {len(train):,} training and {len(test):,} test images; {args.model} for "
        f"{args.epochs} epochs, {batch}, {args.optimizer} lr {args.lr} "
        f"({args.schedule}){', augmented' if args.augment else ''}, "
        f"{minidl.get_num_threads()} threads{' a rank' if args.distributed else ''}"
    )
    variants = {"compare": (False, True), "bn": (True,), "plain": (False,)}[args.variant]
    results = [train_one(args, dataset, bn, train, test, target) for bn in variants]
    if minidl.distributed.is_main_process():
        print_table(results, target, dataset)
        plot_curves(results, args.plot or f"{args.model}_{dataset}_curves.png", target)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
