"""The examples in docstrings run and print what they say."""

import doctest
import importlib

import numpy as np
import pytest

import minidl

MODULES = [
    "minidl",
    "minidl.autograd",
    "minidl.gradcheck",
    "minidl.random",
    "minidl.tensor",
    "minidl.runtime",
    "minidl._reduce",
    "minidl.models",
    "minidl.nn",
    "minidl.nn.module",
    "minidl.nn.layers",
    "minidl.nn.normalization",
    "minidl.nn.activations",
    "minidl.nn.losses",
    "minidl.nn.init",
    "minidl.nn.utils",
    "minidl.nn.functional",
    "minidl.optim",
    "minidl.optim.optimizer",
    "minidl.optim.lr_scheduler",
    "minidl.io",
    "minidl.callbacks",
    "minidl.train",
    "minidl.data",
    "minidl.data.idx",
    "minidl.data.loader",
    "minidl.data.datasets",
    "minidl.data.transforms",
    "minidl.data.distributed",
    "minidl.distributed",
    "minidl.nn.parallel",
    "minidl.nn.parallel.distributed",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    globs = {
        "minidl": minidl,
        "np": np,
        "F": minidl.nn.functional,
        **{k: getattr(module, k) for k in dir(module)},
    }
    for test in finder.find(module, name, globs=globs):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


KERNELS = [
    "sum_leading",
    "sum_channels",
    "sum_all",
    "logsumexp_rows",
    "softmax_xent_forward",
    "softmax_xent_backward",
    "batchnorm_forward_train",
    "batchnorm_forward_eval",
    "batchnorm_backward",
    "groupnorm_forward",
    "instancenorm_forward",
    "layernorm_forward",
    "groupnorm_backward",
    "layernorm_backward",
    "im2col",
    "col2im",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
    "batchnorm_stats",
    "batchnorm_normalize",
    "batchnorm_update_running",
    "batchnorm_backward_reduce",
    "batchnorm_backward_elemt",
]


@pytest.mark.parametrize("name", KERNELS)
def test_kernel_docstring_examples(name):
    from minidl import _ops

    globs = {"np": np, **{k: getattr(_ops, k) for k in dir(_ops) if not k.startswith("__")}}
    doc = getattr(_ops, name).__doc__
    assert ">>>" in doc, f"_ops.{name} has no example"
    test = doctest.DocTestParser().get_doctest(doc, globs, name, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_blocks_in_docs_run(page):
    import re

    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    namespace = {"__name__": "docs_example"}  # a page's blocks run in order, like a session
    for block in blocks:
        exec(compile(block, str(page), "exec"), namespace)


def _printed(code):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "migrating_from_pytorch.md", "exec"), {"__name__": "docs_example"})
    return out.getvalue()


def _as_minidl_prints(text):
    """torch's way of printing shapes and dtypes, written as minidl prints them."""
    import re

    text = re.sub(r"torch\.Size\(\[(\d+)\]\)", r"(\1,)", text)
    text = re.sub(r"torch\.Size\(\[([^\]]*)\]\)", r"(\1)", text)
    return text.replace("torch.", "")


MIGRATING = ROOT / "docs" / "migrating_from_pytorch.md"
MIGRATING_BLOCKS = __import__("re").findall(
    r"```python\n(.*?)```", MIGRATING.read_text(), flags=__import__("re").S
)


@pytest.mark.parametrize("block", range(len(MIGRATING_BLOCKS)))
def test_migration_examples_are_torch_code_with_the_import_changed(block, torch):
    code = MIGRATING_BLOCKS[block]
    assert code.startswith("import minidl as torch\n"), "each block starts with minidl as torch"
    ours = _printed(code)
    theirs = _printed(
        code.replace("import minidl as torch", "import torch").replace("minidl.", "torch.")
    )
    assert ours == _as_minidl_prints(theirs), f"minidl printed:\n{ours}\ntorch printed:\n{theirs}"
