"""``docs/benchmarks.md`` and its figures, written from the results of one run (``run.py``).

Everything on the page comes from the run or from the scripts' own docstrings
(what each column measures), so the page cannot drift from the code. Figures are
drawn with matplotlib's Agg backend on a ``Figure`` object (no pyplot state).
"""

import os
import re

import harness

FIGURE_STEP = "img/bench_step_time.png"
FIGURE_BN_SIZES = "img/bench_bn_sizes.png"

INTRO = """\
# Benchmarks

Speed goals are ratios measured side by side in one run. `python -m benchmarks` runs every
script in `benchmarks/` through one harness (`benchmarks/harness.py`): each library is timed in
its own worker process (torch's OpenMP runtime and allocator state disturb another library's
timings inside one process), one worker per library and group of cases; within a round the
workers of all libraries run back to back, in an order reversed every other round. A worker
gives each thing it measures its best time over a few timed batches, after a warm-up. A ratio
is computed within a round, between workers that ran one right after the other, and the tables
give the median of those per-round ratios with their range: this machine is shared and its
speed drifts from minute to minute, so read the ratios and their spread, not the absolute
times. The load average is recorded before and after. Nothing here is a timed test.

A minidl worker imports minidl before numpy, as the examples do (see
[building](building.md#threads) for why). The same thread count is given to every library.
This page and its figures are written by the run itself:

```sh
python -m benchmarks --write-docs      # about 15 minutes on a quiet 2-core machine
python -m benchmarks --quick           # a smoke test: a few cases, 2 rounds
python -m benchmarks --only train_step --rounds 3   # one script (train_step, batchnorm,
                                       # bn_sizes, norms, reductions, data)
```

Each script also runs alone (`python benchmarks/bench_batchnorm.py --rounds 5`), printing its
times and its ratios.
"""

# where the page says more about a script's subject (links checked to exist)
NOTES = {
    "batchnorm": "minidl's heap settings, which torch+keep borrows, are described in "
    "[kernels](kernels.md#memory).",
    "data": "See also [data](data.md#speed).",
}


def _markdown(docstring):
    """A script's docstring as markdown: its title, then its text without the usage line."""
    lines = docstring.strip().splitlines()
    title = lines[0].rstrip(".")
    body = [line for line in lines[1:] if not line.startswith("    ")]
    text = "\n".join(body).strip()
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    return title, text


def _times_block(text):
    return "```text\n" + text.strip("\n") + "\n```\n"


def _figure_step(result, path):
    """Step time against batch size, minidl and torch, median with the rounds' range."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    module = result["module"]
    rounds = result["rounds"]
    figure = Figure(figsize=(6, 4), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for library, style in (("minidl", "o-"), ("torch", "s--")):
        sizes, mid, low, high = [], [], [], []
        for size in module.BATCHES:
            case = f"CNN-BN, batch {size}, SGD"
            if case not in rounds[0] or library not in rounds[0][case]:
                continue
            median, least, most = harness.spread([r[case][library] * 1e3 for r in rounds])
            sizes.append(size)
            mid.append(median)
            low.append(median - least)
            high.append(most - median)
        if sizes:
            axes.errorbar(sizes, mid, yerr=[low, high], fmt=style, capsize=3, label=library)
    axes.set_xscale("log", base=2)
    measured = [size for size in module.BATCHES if f"CNN-BN, batch {size}, SGD" in rounds[0]]
    axes.set_xticks(measured, [str(size) for size in measured])
    axes.minorticks_off()
    axes.set_xlabel("batch size")
    axes.set_ylabel("step time (ms)")
    axes.set_title(
        "CNN-BN training step, SGD momentum (median, range of rounds)", fontsize="medium"
    )
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)


def _figure_bn_sizes(result, path):
    """BN forward + backward time against tensor size: kernels, layers, bound."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    module = result["module"]
    table = harness.medians(result["rounds"])
    figure = Figure(figsize=(6, 4), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    lines = (
        ("minidl", "minidl kernels", "o-"),
        ("minidl layer", "minidl layer", "^-"),
        ("torch layer", "torch layer", "s--"),
        ("bound", "bandwidth bound (5 passes at copy speed)", "k:"),
    )
    for label, legend, style in lines:
        points = [
            (module.MEBIBYTES[case], table[case][label] * 1e3)
            for case in result["cases"]
            if label in table[case]
        ]
        if points:
            axes.plot(*zip(*points), style, label=legend)
    axes.set_xscale("log")
    axes.set_yscale("log")
    sizes = [module.MEBIBYTES[case] for case in result["cases"]]
    axes.set_xticks(sizes, [f"{size:g}" for size in sizes])
    axes.minorticks_off()
    if max(sizes) > 32:
        axes.axvline(32, color="grey", linewidth=0.8, alpha=0.6)
        axes.text(
            31, axes.get_ylim()[0] * 1.15, "glibc's mmap threshold ", ha="right", fontsize="x-small"
        )
    axes.set_xlabel("tensor size (MiB, float32)")
    axes.set_ylabel("forward + backward (ms, median)")
    axes.set_title("Batch norm, training, against tensor size")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)


def _facts(facts):
    return (
        f"- Run {facts['date']}, in {facts['seconds'] / 60:.1f} minutes: `{facts['command']}`\n"
        f"- Machine: {facts['cpu']}, {facts['cores']} cores ({facts['usable cores']} usable); "
        f"Python {facts['python']}, numpy {facts['numpy']}, torch {facts['torch']} (CPU)\n"
        f"- {facts['threads']} threads for every library; {facts['rounds']} rounds, each worker's "
        f"best of {facts['repeats']} timed batches\n"
        f"- Load average (1, 5, 15 min): {facts['load_before']} before, "
        f"{facts['load_after']} after\n"
        f"- minidl at commit `{facts['commit']}`\n"
    )


def write(docs_dir, results, rows, facts, summary):
    """Write the page and the figures into ``docs_dir``; the paths written."""
    os.makedirs(os.path.join(docs_dir, "img"), exist_ok=True)
    written = []
    parts = [INTRO, "## This run\n", _facts(facts)]
    parts += ["## Summary\n", _times_block(summary)]
    parts.append(
        "Ratios are lower-is-better times: `minidl / torch` under 1 means minidl is faster; "
        "`/ bound` is the time over the bandwidth bound; `layer / kernels` is what the layer "
        "(autograd, the module) adds to its kernels. Targets are those of issue 13; a missed "
        "target is reported, not an error.\n"
    )
    for name, result in results.items():
        module = result["module"]
        title, text = _markdown(module.__doc__)
        parts.append(f"## {title} (`benchmarks/{module.__name__}.py`)\n")
        parts.append(text + "\n")
        if name in NOTES:
            parts.append(NOTES[name] + "\n")
        if "error" in result:
            parts.append("Failed in this run:\n")
            parts.append(_times_block(result["error"]))
            continue
        if name == "data":
            if result["text"]:
                parts.append(_times_block(result["text"]))
            else:
                parts.append(
                    "Not measured in this run: no data set was found (set `MINIDL_DATA`).\n"
                )
            continue
        parts.append(f"Measured in {result['elapsed']:.0f} s:\n")
        parts.append(_times_block(result["text"]))
        if name == "train_step":
            _figure_step(result, os.path.join(docs_dir, FIGURE_STEP))
            written.append(os.path.join(docs_dir, FIGURE_STEP))
            parts.append(f"![CNN-BN step time against batch size]({FIGURE_STEP})\n")
        if name == "bn_sizes":
            _figure_bn_sizes(result, os.path.join(docs_dir, FIGURE_BN_SIZES))
            written.append(os.path.join(docs_dir, FIGURE_BN_SIZES))
            parts.append(f"![Batch norm time against tensor size]({FIGURE_BN_SIZES})\n")
    page = os.path.join(docs_dir, "benchmarks.md")
    with open(page, "w") as out:
        out.write("\n".join(parts))
    return [page, *written]
