"""Typing: the compiled modules' stubs match them, and a typed user script checks clean.

``minidl/_ops.pyi`` and ``minidl/_alloc.pyi`` describe the compiled modules for type
checkers; a kernel added to ``_ops.pyx`` without its stub (or a stub left behind by a
removed kernel) fails here. The mypy tests skip when mypy is not installed (.ci/run
installs it).
"""

import ast
import importlib
import inspect
import subprocess
import sys
import types
from pathlib import Path

import pytest

import minidl

PACKAGE = Path(minidl.__file__).parent
ROOT = PACKAGE.parent
USER_SCRIPT = Path(__file__).parent / "typing" / "user_script.py"


def stub_names(path):
    """The top-level names a stub defines: functions, and annotated or assigned variables."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {name for name in names if not name.startswith("_")}


def public_names(module):
    """What a user of ``module`` sees: public names that are not imported modules."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


@pytest.mark.parametrize("name", ["_ops", "_alloc"])
def test_stub_lists_exactly_the_compiled_modules_public_names(name):
    module = importlib.import_module(f"minidl.{name}")
    assert Path(module.__file__).suffix in (".so", ".pyd"), module.__file__
    in_stub = stub_names(PACKAGE / f"{name}.pyi")
    in_module = public_names(module)
    assert in_stub == in_module, (
        f"minidl/{name}.pyi is out of step with the compiled module: "
        f"missing from the stub {sorted(in_module - in_stub)}, "
        f"not in the module {sorted(in_stub - in_module)}"
    )


@pytest.mark.parametrize("name", ["_ops", "_alloc"])
def test_stub_parameters_match_the_compiled_signatures(name):
    # Cython embeds each def's signature in its docstring (embedsignature=True)
    module = importlib.import_module(f"minidl.{name}")
    stub = {
        node.name: [a.arg for a in (*node.args.args, *node.args.kwonlyargs)]
        for node in ast.parse((PACKAGE / f"{name}.pyi").read_text()).body
        if isinstance(node, ast.FunctionDef)
    }
    differ = {}
    for function_name, stub_parameters in stub.items():
        parameters = list(inspect.signature(getattr(module, function_name)).parameters)
        if parameters != stub_parameters:
            differ[function_name] = (parameters, stub_parameters)
    assert not differ, f"(compiled, stub) parameters differ in minidl/{name}.pyi: {differ}"


def test_the_package_is_marked_typed():
    assert (PACKAGE / "py.typed").is_file()


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory):
    """One cache for this file's mypy runs: minidl and numpy are analyzed once."""
    return tmp_path_factory.mktemp("mypy_cache")


def run_mypy(tmp_path, cache, script, strict):
    """mypy on ``script`` as a user's project sees minidl: as a library, its own errors silent."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (.ci/run installs it)")
    config = tmp_path / "mypy.ini"
    config.write_text(
        f"[mypy]\npython_version = 3.10\nstrict = {strict}\n"
        f"cache_dir = {cache}\n"
        "[mypy-minidl.*]\nfollow_imports = silent\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


@pytest.mark.slow
def test_a_typed_user_script_checks_clean_under_strict(tmp_path, mypy_cache):
    # what a torch user writes: tensors, a model, an optimizer and schedule, a loop, save/load
    result = run_mypy(tmp_path, mypy_cache, USER_SCRIPT, strict=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_the_public_api_reveals_the_types_a_user_expects(tmp_path, mypy_cache):
    result = run_mypy(tmp_path, mypy_cache, USER_SCRIPT.with_name("reveal.py"), strict=False)
    revealed = [
        line.split("Revealed type is ")[1].strip('"')
        for line in result.stdout.splitlines()
        if "Revealed type is" in line
    ]
    expected = [
        line.split("# revealed: ")[1]
        for line in USER_SCRIPT.with_name("reveal.py").read_text().splitlines()
        if "# revealed: " in line
    ]
    assert revealed == expected, result.stdout
