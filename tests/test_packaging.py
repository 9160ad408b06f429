"""Packaging: which -march setup.py gives a build, without compiling anything.

A build that stays where it was made (``setup.py build_ext --inplace``, an editable
install) may use this CPU's instructions; a wheel or an sdist install must not, so it
runs on other machines. .ci/run checks the flags a real wheel recorded.
"""

import platform
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def build_ext_class(monkeypatch):
    """setup.py's BuildExt, read with setup() and cythonize() replaced (nothing is built)."""
    pytest.importorskip("Cython", reason="setup.py needs Cython (in the build isolation only)")
    if not (ROOT / "setup.py").is_file():
        pytest.skip("not a source checkout")
    import Cython.Build
    import setuptools
    from setuptools.command.build_ext import build_ext

    captured = {}
    monkeypatch.setattr(setuptools, "setup", lambda **options: captured.update(options))
    monkeypatch.setattr(Cython.Build, "cythonize", lambda extensions, **options: extensions)
    monkeypatch.setattr(build_ext, "run", lambda self: None)  # choose flags, compile nothing
    monkeypatch.chdir(ROOT)
    runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    return captured["cmdclass"]["build_ext"]


@pytest.mark.parametrize(
    ("inplace", "editable", "native"),
    [(True, False, True), (False, True, True), (False, False, False)],
    ids=["build_ext --inplace", "pip install -e", "wheel or sdist install"],
)
def test_march_is_native_only_for_builds_that_stay_where_they_were_made(
    build_ext_class, inplace, editable, native
):
    from setuptools.dist import Distribution

    command = build_ext_class(Distribution())
    command.inplace, command.editable_mode = inplace, editable
    command.run()
    march = command.default_march()
    if native:
        assert march == "native"
    elif platform.machine().lower() in ("x86_64", "amd64"):
        assert march == "x86-64-v2"
    else:
        assert march == ""
