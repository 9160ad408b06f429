"""The examples in docstrings run and print what they say."""

import doctest
import importlib

import doc_blocks  # tests/doc_blocks.py
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
    "minidl.cuda",
    "minidl.utils",
    "minidl.utils.data",
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


def _kernels():
    """Every public function of the compiled module (each must carry an example)."""
    from minidl import _ops

    return sorted(n for n in dir(_ops) if not n.startswith("_") and callable(getattr(_ops, n)))


KERNELS = _kernels()


@pytest.mark.parametrize("name", KERNELS)
def test_kernel_docstring_examples(name):
    from minidl import _ops

    globs = {"np": np, **{k: getattr(_ops, k) for k in dir(_ops) if not k.startswith("__")}}
    doc = getattr(_ops, name).__doc__
    assert ">>>" in doc, f"_ops.{name} has no example"
    _run_examples(doc, globs, name)


def _run_examples(text, globs, name, filename=None, line=0):
    """Run the ``>>>`` examples of ``text`` in ``globs``; fail naming ``name`` if one fails."""
    test = doctest.DocTestParser().get_doctest(text, globs, name, filename, line)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0, f"{name}: an example failed"


ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
PAGES = doc_blocks.pages()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_blocks_of_the_docs_run(page, tmp_path, monkeypatch):
    """A page's python blocks run in order in one namespace, like a session, in an empty
    working folder; pycon blocks run as doctests in the same namespace. Shell blocks and
    those marked ``<!-- norun: reason -->`` are left out (``python tests/doc_blocks.py``
    lists them)."""
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "docs_example"}
    for block in doc_blocks.blocks(page):
        if block.missing:  # <!-- requires: torch -->; CI installs every optional package
            continue
        if block.kind == "python":
            # line numbers in a traceback are the page's
            code = "\n" * block.line + block.code
            exec(compile(code, str(page), "exec"), namespace)
        elif block.kind == "pycon":
            _run_examples(block.code, namespace, block.where, str(page), block.line)


def test_every_code_block_says_what_it_is():
    """A block without a language (or an unknown one) would be skipped without a word."""
    unnamed = [
        f"{b.where} ({b.language or 'no language'})"
        for page in PAGES
        for b in doc_blocks.blocks(page)
        if b.kind == "unknown"
    ]
    assert not unnamed, (
        "fenced blocks must name a language: python/py/pycon (run), bash/sh/console "
        f"(not run), text (output, diagrams): {unnamed}"
    )


def test_blocks_left_out_say_why():
    for block in doc_blocks.excluded():
        if block.kind == "norun":
            assert block.norun, f"{block.where}: a norun marker gives its reason"
            assert block.language in ("python", "py", "pycon"), (
                f"{block.where}: norun marks python blocks only"
            )


def test_the_block_parser_reads_fences_markers_and_languages(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# T\n\n```python\nx = 1\n```\n\n<!-- norun: trains for minutes -->\n"
        "```python\nslow()\n```\n\n- item\n\n    ```bash\n    ls\n    ```\n\n```\nbare\n```\n"
        "\n  ```` ```text ```` in a sentence\n"
    )
    found = doc_blocks.blocks(page)
    assert [(b.line, b.kind) for b in found] == [
        (3, "python"),
        (8, "norun"),
        (14, "shell"),
        (18, "unknown"),
    ]
    assert found[0].code == "x = 1\n" and found[1].norun == "trains for minutes"
    page.write_text("<!-- requires: torch, no_such_module_here -->\n```python\nx\n```\n")
    (block,) = doc_blocks.blocks(page)
    assert block.kind == "python" and block.requires == ("torch", "no_such_module_here")
    assert "no_such_module_here" in block.missing
    assert found[2].code == "ls\n"


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
MIGRATING_BLOCKS = [b.code for b in doc_blocks.blocks(MIGRATING) if b.language == "python"]


@pytest.mark.parametrize("block", range(len(MIGRATING_BLOCKS)))
def test_migration_examples_are_torch_code_with_the_import_changed(block, torch):
    code = MIGRATING_BLOCKS[block]
    assert code.startswith("import minidl as torch\n"), "each block starts with minidl as torch"
    ours = _printed(code)
    theirs = _printed(
        code.replace("import minidl as torch", "import torch").replace("minidl.", "torch.")
    )
    assert ours == _as_minidl_prints(theirs), f"minidl printed:\n{ours}\ntorch printed:\n{theirs}"
