"""What does batch normalization buy? Five common claims, each tested with and without BN.

    python examples/bn_study.py --quick             # a reduced version, under 2 minutes
    python examples/bn_study.py                     # about 7 minutes on 2 cores
    python examples/bn_study.py --out docs/         # the full study, regenerating docs/bn_study.md

The set-up is Ioffe & Szegedy's Figure 1: the MLP 784-100-100-100-10 with
sigmoids (BatchNorm before each sigmoid in the BN variant), batches of 60, plain
SGD, MNIST (or, where MNIST is not to be had, the 6,000-image sample bundled with
minidl, saying so). Each comparison uses the same seeds for both variants. The claims:

1. faster convergence: test accuracy against training steps; steps to 95% and 97%;
2. higher learning rates: final accuracy over a sweep of learning rates;
3. less dependence on initialization: final accuracy over weight-init scales;
4. regularization: the train-test gap, with and without dropout;
5. stable sigmoid inputs: the 15th, 50th and 85th percentiles of one sigmoid's
   input over training (Figure 1(b, c)), recorded by ``minidl.train.ActivationStats``.

The report (tables, PNG figures under ``img/``, and a plain statement of which
claims held in this set-up) goes to ``--out``: by default ``bn_study_out/`` in the
working folder, never the committed docs unless asked (``--out docs/``, for the full
study only: ``--quick`` refuses to write there). Verdicts of a quick run, or of a run
on the bundled sample, are marked as not conclusive.
"""

# isort: off
import minidl  # before numpy: minidl tunes OpenBLAS's threads, which numpy loads

import argparse
import os
import sys
import time

import numpy as np

from minidl import models, nn
from minidl.data import datasets

# isort: on

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.realpath(os.path.join(ROOT, "docs"))
FULL_COMMAND = "python examples/bn_study.py --out docs/"


def settings(quick):
    """How much of each experiment to run."""
    if quick:
        return {
            "seeds": [0],
            "epochs": 2,
            "train_subset": 12000,
            "lr": 0.5,
            "lrs": [0.03, 0.3, 3.0],
            "lr_epochs": 1,
            "stds": [0.01, 0.3, 3.0],
            "init_epochs": 1,
            "gap_subset": 3000,
            "gap_epochs": 4,
            "eval_every": 50,
        }
    return {
        "seeds": [0, 1],
        "epochs": 15,
        "train_subset": None,
        "lr": 0.5,
        "lrs": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
        "lr_epochs": 2,
        "stds": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
        "init_epochs": 2,
        "gap_subset": 10000,
        "gap_epochs": 20,
        "eval_every": 100,
    }


def subset(dataset, count):
    if count is None or count >= len(dataset):
        return dataset
    return minidl.data.Subset(dataset, np.arange(count))


def mlp(bn, dropout=0.0, init_std=None):
    """The Figure 1 MLP; optional dropout after each sigmoid and N(0, std) weights."""
    model = models.bn_paper_mlp(batch_norm=bn)
    if dropout:
        layers = []
        for layer in model:
            layers.append(layer)
            if isinstance(layer, nn.Sigmoid):
                layers.append(nn.Dropout(dropout))
        model = nn.Sequential(*layers)
    if init_std is not None:
        for layer in model:
            if isinstance(layer, nn.Dense):
                nn.init.normal_(layer.weight, 0.0, init_std)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
    return model


def train(model, train_data, test_data, lr, epochs, callbacks=(), seed=0):
    """Plain SGD, batches of 60; returns the trainer (its history) after ``epochs``."""
    minidl.manual_seed(seed + 1000)  # the data order: the same for both variants
    loader = minidl.data.DataLoader(train_data, batch_size=60, shuffle=True)
    trainer = minidl.Trainer(
        model,
        minidl.optim.SGD(model.parameters(), lr=lr),
        loss=nn.CrossEntropyLoss(),
        metrics=["accuracy"],
        callbacks=list(callbacks),
        verbose=0,
        terminate_on_nan=False,
    )
    with np.errstate(all="ignore"):  # a diverging run is a result here, not an error
        trainer.fit(loader, epochs=epochs)
    return trainer


def accuracy_of(trainer, data):
    with np.errstate(all="ignore"):
        result = trainer.evaluate(minidl.data.DataLoader(data, batch_size=1000))
    return result["accuracy"] if np.isfinite(result["loss"]) else float("nan")


def label(bn):
    return "with BN" if bn else "without BN"


# ---------------------------------------------------------------- the experiments


def convergence(cfg, train_data, test_data):
    """Claims 1 and 5: accuracy against steps, and one sigmoid's input over training."""
    runs = []
    for seed in cfg["seeds"]:
        for bn in (False, True):
            minidl.manual_seed(seed)
            model = mlp(bn)
            tracker = minidl.train.PeriodicEvaluation(
                minidl.data.DataLoader(test_data, batch_size=1000), every=cfg["eval_every"]
            )
            last_sigmoid = [m for m in model if isinstance(m, nn.Sigmoid)][-1]
            stats = minidl.train.ActivationStats(last_sigmoid, every=cfg["eval_every"], unit=0)
            start = time.perf_counter()
            trainer = train(
                model, train_data, test_data, cfg["lr"], cfg["epochs"], [tracker, stats], seed
            )
            runs.append(
                {
                    "seed": seed,
                    "bn": bn,
                    "tracker": tracker,
                    "stats": stats,
                    "steps_95": tracker.steps_to("accuracy", 0.95),
                    "steps_97": tracker.steps_to("accuracy", 0.97),
                    "final": tracker.records[-1]["accuracy"],
                    "steps": trainer.global_step,
                    "seconds": time.perf_counter() - start,
                }
            )
            print(
                f"  convergence, seed {seed}, {label(bn)}: final {runs[-1]['final']:.4f}, "
                f"steps to 95% {runs[-1]['steps_95']}, to 97% {runs[-1]['steps_97']}"
            )
    return runs


def learning_rates(cfg, train_data, test_data):
    """Claim 2: final accuracy after a short training, over learning rates."""
    results = {}
    for bn in (False, True):
        for lr in cfg["lrs"]:
            minidl.manual_seed(0)
            trainer = train(mlp(bn), train_data, test_data, lr, cfg["lr_epochs"])
            results[(bn, lr)] = accuracy_of(trainer, test_data)
            print(f"  lr {lr:g}, {label(bn)}: {results[(bn, lr)]:.4f}")
    return results


def initialization(cfg, train_data, test_data):
    """Claim 3: final accuracy over the std of N(0, std) initial weights."""
    results = {}
    for bn in (False, True):
        for std in cfg["stds"]:
            minidl.manual_seed(0)
            trainer = train(
                mlp(bn, init_std=std), train_data, test_data, cfg["lr"], cfg["init_epochs"]
            )
            results[(bn, std)] = accuracy_of(trainer, test_data)
            print(f"  init std {std:g}, {label(bn)}: {results[(bn, std)]:.4f}")
    return results


def generalization(cfg, train_data, test_data):
    """Claim 4: train and test accuracy on a small training set, with and without dropout."""
    small = subset(train_data, cfg["gap_subset"])
    results = {}
    for bn in (False, True):
        for dropout in (0.0, 0.2):
            minidl.manual_seed(0)
            trainer = train(
                mlp(bn, dropout=dropout), small, test_data, cfg["lr"], cfg["gap_epochs"]
            )
            train_accuracy, test_accuracy = (
                accuracy_of(trainer, small),
                accuracy_of(trainer, test_data),
            )
            results[(bn, dropout)] = (train_accuracy, test_accuracy)
            print(
                f"  dropout {dropout}, {label(bn)}: train {train_accuracy:.4f}, "
                f"test {test_accuracy:.4f}"
            )
    return results


# ---------------------------------------------------------------- the report


def _steps(value):
    return "not reached" if value is None else f"{value:,}"


def _median_steps(runs, bn, key):
    """The median over seeds of the steps to a target; None unless every seed reached it."""
    values = [r[key] for r in runs if r["bn"] == bn]
    return None if any(v is None for v in values) else int(np.median(values))


def verdicts(runs, lrs, inits, gaps):
    """Whether each claim held in this run, in words, computed from the figures."""
    out = {}
    faster = {}
    for target in ("95", "97"):
        plain = _median_steps(runs, False, f"steps_{target}")
        with_bn = _median_steps(runs, True, f"steps_{target}")
        faster[target] = (
            with_bn is not None and (plain is None or with_bn < plain),
            with_bn,
            plain,
        )
    held = [faster[t][0] for t in ("95", "97")]
    out[1] = (
        "held" if all(held) else ("partly held" if any(held) else "did not hold"),
        "; ".join(
            f"steps to {t}% (median over seeds): {_steps(faster[t][1])} with BN, "
            f"{_steps(faster[t][2])} without"
            for t in ("95", "97")
        ),
    )

    def best_range(results, bn, keys, floor=0.9):
        return [k for k in keys if np.isfinite(results[(bn, k)]) and results[(bn, k)] >= floor]

    lr_keys = sorted({k for _, k in lrs})
    plain_ok, bn_ok = best_range(lrs, False, lr_keys), best_range(lrs, True, lr_keys)
    max_plain = max(plain_ok) if plain_ok else None
    max_bn = max(bn_ok) if bn_ok else None
    held = max_bn is not None and (max_plain is None or max_bn > max_plain)
    out[2] = (
        "held" if held else "did not hold",
        f"largest learning rate still reaching 90%: {max_bn} with BN, {max_plain} without",
    )

    std_keys = sorted({k for _, k in inits})
    spread = {
        bn: np.nanmax([inits[(bn, k)] for k in std_keys])
        - np.nanmin([inits[(bn, k)] for k in std_keys])
        for bn in (False, True)
    }
    held = spread[True] < spread[False]
    out[3] = (
        "held" if held else "did not hold",
        f"accuracy range over init scales: {spread[True]:.3f} with BN, {spread[False]:.3f} without",
    )

    gap_bn = gaps[(True, 0.0)][0] - gaps[(True, 0.0)][1]
    gap_plain = gaps[(False, 0.0)][0] - gaps[(False, 0.0)][1]
    held = gap_bn < gap_plain and gaps[(True, 0.0)][1] >= gaps[(False, 0.0)][1]
    out[4] = (
        "held" if held else "did not hold",
        f"train-test gap without dropout: {gap_bn:.3f} with BN, {gap_plain:.3f} without; "
        f"test accuracy {gaps[(True, 0.0)][1]:.4f} with BN, {gaps[(False, 0.0)][1]:.4f} without",
    )

    def drift(bn):
        run = next(r for r in runs if r["bn"] == bn)
        _, values = run["stats"].as_arrays()
        half = max(1, len(values) // 2)
        # how far the 15th-85th band of the input moves after the first half of training
        return float(
            np.abs(values[half:] - values[half]).max() / (values[half, 2] - values[half, 0])
        )

    drift_bn, drift_plain = drift(True), drift(False)
    out[5] = (
        "held" if drift_bn < drift_plain else "did not hold",
        f"movement of the sigmoid input's percentiles in the second half of training, in "
        f"units of their spread: {drift_bn:.2f} with BN, {drift_plain:.2f} without",
    )
    return out


def figures(img_dir, runs, lrs, inits, gaps):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figures (pip install matplotlib)")
        return {}
    os.makedirs(img_dir, exist_ok=True)
    paths = {}

    # left: all of training, every run in view however low it starts or stays; right: the
    # second half enlarged, where the runs differ by a percent or less
    figure, (whole, late) = plt.subplots(1, 2, figsize=(11, 4))
    last_step = max(r["step"] for run in runs for r in run["tracker"].records)
    for axis in (whole, late):
        for run in runs:
            records = run["tracker"].records
            axis.plot(
                [r["step"] for r in records],
                [r["accuracy"] for r in records],
                color="C1" if run["bn"] else "C0",
                alpha=1.0 if run["seed"] == 0 else 0.4,
                label=f"{label(run['bn'])}" if run["seed"] == 0 else None,
            )
        axis.set_xlabel("training steps")
        axis.set_ylabel("test accuracy")
        axis.legend()
    every = [r["accuracy"] for run in runs for r in run["tracker"].records]
    second_half = [
        r["accuracy"] for run in runs for r in run["tracker"].records if r["step"] >= last_step / 2
    ]
    if np.isfinite(every).any():  # a diverged run's nan is skipped
        whole.set_ylim(max(0.0, np.nanmin(every) - 0.02), 1.0)
    whole.set_title("(1) convergence (Figure 1(a) set-up)")
    late.set_xlim(last_step / 2, last_step)
    if np.isfinite(second_half).any():
        low, high = np.nanmin(second_half), np.nanmax(second_half)
        margin = max(0.002, (high - low) * 0.1)
        late.set_ylim(max(0.0, low - margin), min(1.0, high + margin))
    late.set_title("the second half, enlarged")
    paths["convergence"] = _save(figure, img_dir, "bn_study_convergence.png", plt)

    for name, results, xlabel in (
        ("lr", lrs, "learning rate"),
        ("init", inits, "std of initial weights"),
    ):
        figure, axis = plt.subplots(figsize=(6, 4))
        keys = sorted({k for _, k in results})
        for bn in (False, True):
            axis.plot(keys, [results[(bn, k)] for k in keys], marker="o", label=label(bn))
        axis.set_xscale("log")
        axis.set_xlabel(xlabel)
        axis.set_ylabel("test accuracy")
        axis.legend()
        paths[name] = _save(figure, img_dir, f"bn_study_{name}.png", plt)

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for axis, bn in zip(axes, (False, True)):
        run = next(r for r in runs if r["bn"] == bn)
        steps, values = run["stats"].as_arrays()
        for column, percentile in enumerate((15, 50, 85)):
            axis.plot(steps, values[:, column], label=f"{percentile}th percentile")
        axis.set_title(f"input to one sigmoid, {label(bn)}")
        axis.set_xlabel("training steps")
        axis.legend()
    paths["sigmoid"] = _save(figure, img_dir, "bn_study_sigmoid.png", plt)
    return paths


def _save(figure, img_dir, name, plt):
    figure.tight_layout()
    path = os.path.join(img_dir, name)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return f"img/{name}"


def _sweep_section(text, name, results, image, caption):
    """A paragraph, a table of accuracy over one swept setting (with and without BN), a figure."""
    keys = sorted({k for _, k in results})
    lines = [text, "", f"| {name} | " + " | ".join(f"{k:g}" for k in keys) + " |"]
    lines.append("| --- |" + " --- |" * len(keys))
    for bn in (False, True):
        lines.append(
            f"| {label(bn)} | " + " | ".join(f"{results[(bn, k)]:.4f}" for k in keys) + " |"
        )
    if image:
        lines += ["", f"![{caption}]({image})"]
    return lines


def caveat(quick, dataset):
    """Why this run's verdicts are not conclusive, or "" for a full run on a full data set."""
    if quick:
        return "a quick run: not conclusive"
    if dataset == "mnist-sample":
        return "on the 6,000-image sample: not conclusive"
    return ""


def report(path, args, cfg, dataset, data, runs, lrs, inits, gaps, images, elapsed):
    results = verdicts(runs, lrs, inits, gaps)
    warning = caveat(args.quick, dataset)
    if warning:
        results = {
            n: (f"{verdict} ({warning})", evidence) for n, (verdict, evidence) in results.items()
        }
    command = "python examples/bn_study.py" + (" --quick" if args.quick else "")
    if os.path.realpath(args.out) == DOCS:
        command += " --out docs/"
    if os.environ.get("MINIDL_DATA"):  # where the data came from, without the machine's paths
        command = "MINIDL_DATA=/path/to/datasets " + command
    threads = minidl.get_num_threads()
    if os.environ.get("OMP_NUM_THREADS"):
        command = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " + command
    lines = [
        "# What batch normalization buys: five claims, tested",
        "",
        f"Written by `{command}` on {time.strftime('%Y-%m-%d')} ({elapsed / 60:.1f} minutes, "
        f"{threads} thread{'s' if threads != 1 else ''}), on {dataset} ({data}). Set-up: Ioffe & "
        "Szegedy's Figure 1 MLP (784-100-100-100-10, sigmoid; BatchNorm before each sigmoid), "
        f"batches of 60, plain SGD with a constant learning rate ({cfg['lr']} unless varied), "
        "the same seeds with and without BN. Figures and verdicts below are this run's; a "
        "claim that did not hold here is said so."
        + (
            f" These verdicts are from {warning}; the full study is `{FULL_COMMAND}`."
            if warning
            else ""
        ),
        "",
        "| claim | verdict here | evidence |",
        "| --- | --- | --- |",
    ]
    names = {
        1: "faster convergence",
        2: "higher learning rates",
        3: "less dependence on initialization",
        4: "regularization (train-test gap)",
        5: "stable input distribution of a sigmoid",
    }
    for number in range(1, 6):
        verdict, evidence = results[number]
        lines.append(f"| {number}. {names[number]} | **{verdict}** | {evidence} |")

    lines += [
        "",
        "## 1. Faster convergence",
        "",
        f"Test accuracy every {cfg['eval_every']} steps over {cfg['epochs']} epochs, seeds "
        f"{cfg['seeds']}.",
        "",
        "| seed | model | steps to 95% | steps to 97% | final test accuracy | time |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        lines.append(
            f"| {run['seed']} | {label(run['bn'])} | {_steps(run['steps_95'])} | "
            f"{_steps(run['steps_97'])} | {run['final']:.4f} | {run['seconds']:.0f} s |"
        )
    if "convergence" in images:
        lines += ["", f"![test accuracy against steps]({images['convergence']})"]

    lines += ["", "## 2. Higher learning rates", ""]
    lines += _sweep_section(
        f"Test accuracy after {cfg['lr_epochs']} epoch(s) of plain SGD at each learning rate "
        "(nan: the run diverged).",
        "learning rate",
        lrs,
        images.get("lr"),
        "accuracy over learning rates",
    )
    lines += ["", "## 3. Less dependence on initialization", ""]
    lines += _sweep_section(
        f"Weights drawn from N(0, std), biases 0; test accuracy after {cfg['init_epochs']} "
        f"epoch(s) at learning rate {cfg['lr']}.",
        "init std",
        inits,
        images.get("init"),
        "accuracy over init scales",
    )

    lines += [
        "",
        "## 4. Regularization",
        "",
        f"Trained for {cfg['gap_epochs']} epochs on the first {cfg['gap_subset']:,} training "
        "images, so that the network can overfit; dropout (p = 0.2) after each sigmoid "
        "where marked.",
        "",
        "| model | dropout | train accuracy | test accuracy | gap |",
        "| --- | --- | --- | --- | --- |",
    ]
    for (bn, dropout), (train_accuracy, test_accuracy) in gaps.items():
        lines.append(
            f"| {label(bn)} | {dropout} | {train_accuracy:.4f} | {test_accuracy:.4f} | "
            f"{train_accuracy - test_accuracy:.4f} |"
        )

    lines += [
        "",
        "## 5. The input distribution of one sigmoid",
        "",
        "The 15th, 50th and 85th percentiles, over each recorded batch, of the input to the "
        "first unit of the last hidden sigmoid (seed 0), as in Figure 1(b, c).",
        "",
    ]
    if "sigmoid" in images:
        lines.append(f"![sigmoid input percentiles]({images['sigmoid']})")
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print(f"report: {path}")
    for number in range(1, 6):
        print(f"  claim {number} ({names[number]}): {results[number][0]} - {results[number][1]}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="a reduced study, under 2 minutes; not conclusive"
    )
    parser.add_argument(
        "--dataset",
        choices=("auto", *datasets.CLASSES),
        default="auto",
        help="auto: MNIST where it is found or can be downloaded, else the bundled sample",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="a folder holding the data set's files, searched before $MINIDL_DATA/<name>, "
        "the cache and /usr/share/datasets",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default="bn_study_out",
        help="folder for bn_study.md and img/, made if missing; docs/ only for the full study",
    )
    args = parser.parse_args(argv)
    if args.quick and os.path.realpath(args.out) == DOCS:
        parser.error("a --quick study is not conclusive and does not go to docs/; drop --quick")
    if args.dataset == "mnist-sample" and args.data_dir is not None:
        parser.error("--data-dir does not apply to --dataset mnist-sample (it ships with minidl)")
    cfg = settings(args.quick)
    start = time.perf_counter()
    try:
        dataset = datasets.choose_dataset(
            args.dataset, args.data_dir, sample_fallback=True, data_dir_option="--data-dir"
        )
    except (FileNotFoundError, minidl.CorruptFileError) as error:
        sys.exit(str(error))  # the places searched and the fixes, without a traceback
    train_data = datasets.open_dataset(dataset, "train", args.data_dir, normalize=True)
    test_data = datasets.open_dataset(dataset, "test", args.data_dir, normalize=True)
    available = len(train_data)
    train_data = subset(train_data, cfg["train_subset"])
    print(f"{dataset}: {len(train_data):,} training images, {len(test_data):,} test images")
    data = (
        f"the first {len(train_data):,} of its {available:,} training images"
        if len(train_data) < available
        else f"all {available:,} training images"
    ) + f", the full test set of {len(test_data):,} images"
    if dataset == "mnist-sample":
        data = f"the MNIST sample bundled with minidl: {data}"
    print("1, 5: convergence and sigmoid inputs")
    runs = convergence(cfg, train_data, test_data)
    print("2: learning rates")
    lrs = learning_rates(cfg, train_data, test_data)
    print("3: initialization")
    inits = initialization(cfg, train_data, test_data)
    print("4: regularization")
    gaps = generalization(cfg, train_data, test_data)
    os.makedirs(args.out, exist_ok=True)
    images = figures(os.path.join(args.out, "img"), runs, lrs, inits, gaps)
    return report(
        os.path.join(args.out, "bn_study.md"),
        args,
        cfg,
        dataset,
        data,
        runs,
        lrs,
        inits,
        gaps,
        images,
        time.perf_counter() - start,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
