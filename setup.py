"""Builds the compiled modules (everything else is in pyproject.toml): ``agents.watch.kernel``
(watch matching's per-article loop) and ``agents.clean.scan`` (the markup pre-scan)."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize(
    [
        Extension("agents.watch.kernel", ["agents/watch/kernel.pyx"], extra_compile_args=["-O2"]),
        Extension("agents.clean.scan", ["agents/clean/scan.pyx"], extra_compile_args=["-O2"]),
    ],
    compiler_directives={"language_level": "3"},
))
