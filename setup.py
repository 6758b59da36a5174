"""Builds the compiled modules (everything else is in pyproject.toml): ``agents.watch.kernel``
(watch matching's per-article loop), ``agents.clean.scan`` (the markup pre-scan) and
``agents.tag.ner.kernel`` (the entity tagger's tokenizer, scores and Viterbi)."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize(
    [
        Extension("agents.watch.kernel", ["agents/watch/kernel.pyx"], extra_compile_args=["-O2"]),
        Extension("agents.clean.scan", ["agents/clean/scan.pyx"], extra_compile_args=["-O2"]),
        Extension("agents.tag.ner.kernel", ["agents/tag/ner/kernel.pyx"], extra_compile_args=["-O2"]),
    ],
    compiler_directives={"language_level": "3"},
))
