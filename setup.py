"""Builds the one compiled module, ``agents.watch.kernel`` (watch matching's per-article loop);
everything else is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize(
    [Extension("agents.watch.kernel", ["agents/watch/kernel.pyx"], extra_compile_args=["-O2"])],
    compiler_directives={"language_level": "3"},
))
