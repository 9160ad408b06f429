"""Build script for minidl's compiled modules.

``minidl/_ops.pyx`` holds the kernels; ``minidl/_alloc.pyx`` numpy's memory handler
that caches large blocks (it needs numpy's headers, not OpenMP).

Metadata lives in ``pyproject.toml``; this file only describes the extension.

Environment switches (read at build time):

* ``MINIDL_DEBUG=1``  turns Cython's bounds, wrap-around and initialization checks
  back on and builds with ``-O0 -g``: slow, for hunting a crash in a kernel.
* ``MINIDL_NO_OPENMP=1``  builds single-threaded even where OpenMP is available.
* ``MINIDL_MARCH=<arch>``  the ``-march`` value, when the compiler accepts it. By default
  a build that stays where it was made (``python setup.py build_ext --inplace``,
  ``pip install -e .``) takes ``native``, the instructions of this machine's CPU; every
  other build (a wheel, an sdist install, ``pip install .``) takes the portable
  ``x86-64-v2`` on x86-64 (the SSE4.2 baseline numpy's own wheels require) and no
  ``-march`` elsewhere, so the wheel runs on any machine numpy runs on.
  ``MINIDL_MARCH=`` (empty) builds with no ``-march`` at all.
"""

import os
import platform
import sys
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("MINIDL_DEBUG", "") not in ("", "0")

# Spelled exactly: Cython ignores a misspelled directive without a word.
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

# Lets gcc vectorize floating-point reductions (it must otherwise keep the order of
# additions) without -ffast-math's promise that no NaN or inf ever occurs.
REDUCTION_FLAGS = [
    "-fassociative-math",
    "-fno-signed-zeros",
    "-fno-trapping-math",
    "-fno-math-errno",
]

# The -march of a build that may run on another machine (a wheel): numpy's own x86-64
# baseline (SSE4.2, POPCNT), so minidl asks no more of the CPU than numpy does.
PORTABLE_MARCH = {"x86_64": "x86-64-v2", "amd64": "x86-64-v2"}

OPENMP_PROBE = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return omp_get_max_threads() > 0 && n > 0 ? 0 : 1;
}
"""


class BuildExt(build_ext):
    """Adds optimization flags and OpenMP when the compiler supports them."""

    def _compiles(self, source, flags, link=True):
        """Whether ``source`` compiles (and links) with ``flags`` on this compiler."""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "probe.c")
            with open(path, "w") as handle:
                handle.write(source)
            try:
                objects = self.compiler.compile([path], output_dir=tmp, extra_postargs=flags)
                if link:
                    self.compiler.link_executable(
                        objects, os.path.join(tmp, "probe"), extra_postargs=flags
                    )
            except Exception:  # any compiler or linker failure means "not supported"
                return False
        return True

    def run(self):
        # setuptools clears ``inplace`` while it compiles; remember what was asked
        self.stays_here = bool(self.inplace or getattr(self, "editable_mode", False))
        super().run()

    def default_march(self):
        """``native`` for an in-place or editable build, a portable baseline otherwise."""
        if getattr(self, "stays_here", False):
            return "native"
        return PORTABLE_MARCH.get(platform.machine().lower(), "")

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        if msvc:
            compile_flags = ["/Od"] if DEBUG else ["/O2", "/fp:fast"]
            openmp_flags = ["/openmp"]
        else:
            compile_flags = ["-O0", "-g"] if DEBUG else ["-O3", *REDUCTION_FLAGS]
            march = os.environ.get("MINIDL_MARCH", self.default_march())
            if march and not DEBUG:
                flag = f"-march={march}"
                if self._compiles("int main(void){return 0;}", [flag], link=False):
                    compile_flags.append(flag)
            openmp_flags = ["-fopenmp"]
        use_openmp = os.environ.get("MINIDL_NO_OPENMP", "") in ("", "0") and self._compiles(
            OPENMP_PROBE, openmp_flags
        )
        if not use_openmp:
            sys.stderr.write("minidl: building without OpenMP; kernels run single-threaded\n")
            openmp_flags = []
        for ext in self.extensions:
            threads = openmp_flags if ext.name in OPENMP_EXTENSIONS else []
            ext.extra_compile_args = [*compile_flags, *threads]
            # minidl.show_config() reports the flags the kernels were built with
            flags = " ".join(ext.extra_compile_args).replace('"', "")
            ext.define_macros.append(("MINIDL_BUILD_FLAGS", f'"{flags}"'))
            ext.extra_link_args = [] if msvc else list(threads)
        super().build_extensions()


# The memory handler takes no OpenMP: it must not load the OpenMP runtime before
# minidl.runtime has set the environment that runtime reads.
OPENMP_EXTENSIONS = {"minidl._ops"}

extensions = [
    Extension(
        "minidl._ops",
        ["minidl/_ops.pyx"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
    Extension(
        "minidl._alloc",
        ["minidl/_alloc.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
]


# cythonize regenerates a .c file only when its .pyx is newer, so switching MINIDL_DEBUG over
# an existing in-place build would compile the old C: -O0 without the bounds checks, or the
# checks left in an optimized build. The directives of the last generation are kept in
# build/, and a change forces the C to be generated again.
DIRECTIVES_STAMP = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "build", "cython-directives"
)


STAMPED = repr(sorted(DIRECTIVES.items()))


def _generated_with_these_directives():
    try:
        with open(DIRECTIVES_STAMP) as f:
            return f.read() == STAMPED
    except OSError:
        return False


ext_modules = cythonize(
    extensions, compiler_directives=DIRECTIVES, force=not _generated_with_these_directives()
)
os.makedirs(os.path.dirname(DIRECTIVES_STAMP), exist_ok=True)
with open(DIRECTIVES_STAMP, "w") as f:
    f.write(STAMPED)

setup(
    ext_modules=ext_modules,
    cmdclass={"build_ext": BuildExt},
)
