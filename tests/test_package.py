"""Packaging: the message without a built extension, and public names documented."""

import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minidl

PACKAGE = Path(minidl.__file__).parent


def test_import_without_the_built_extension_names_the_build_command(tmp_path):
    # Under another name, so that the installed (built) minidl cannot be found instead.
    copy = tmp_path / "minidl_unbuilt"
    copy.mkdir()
    for source in PACKAGE.glob("*.py"):
        shutil.copy(source, copy / source.name)
    for source in PACKAGE.glob("*.pyx"):
        shutil.copy(source, copy / source.name)
    result = subprocess.run(
        [sys.executable, "-c", "import minidl_unbuilt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "compiled modules (minidl._ops, minidl._alloc) are not built" in result.stderr
    assert "python -m pip install -e" in result.stderr


PUBLIC = (
    [(minidl, name) for name in minidl.__all__]
    + [(minidl.nn, name) for name in minidl.nn.__all__]
    + [(minidl.nn.functional, name) for name in minidl.nn.functional.__all__]
    + [
        (minidl.nn.init, name)
        for name in dir(minidl.nn.init)
        if name.endswith("_") and not name.startswith("_")
    ]
)


def test_every_public_name_has_a_docstring_with_an_example():
    missing = []
    for namespace, name in PUBLIC:
        value = getattr(namespace, name)
        if inspect.ismodule(value) or isinstance(value, np.dtype):
            continue
        doc = inspect.getdoc(value) or ""
        if ">>>" not in doc:
            missing.append(f"{namespace.__name__}.{name}")
    assert not missing, f"public names without a docstring example: {missing}"


def test_public_modules_have_docstrings():
    for module in (minidl, minidl.autograd, minidl.random, minidl.runtime, minidl.tensor):
        assert inspect.getdoc(module), f"{module.__name__} has no module docstring"


def _keeps_freed_memory(setting):
    env = {k: v for k, v in __import__("os").environ.items() if k != "MINIDL_KEEP_FREED_MEMORY"}
    if setting is not None:
        env["MINIDL_KEEP_FREED_MEMORY"] = setting
    code = "import minidl; print(minidl.runtime.KEEP_FREED_MEMORY)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc heap settings")
def test_heap_settings_apply_on_import_and_can_be_turned_off():
    assert _keeps_freed_memory(None) == "True"
    assert _keeps_freed_memory("0") == "False"
