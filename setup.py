"""Only the optional C accelerator of the tracer; every other setting is in pyproject.toml.

``optional=True``: without a compiler (or on a Python the extension does not support) the build
warns and goes on, and ``tracegym.tracers.trace`` uses its pure-Python recorder.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("tracegym.tracers._ctrace", ["tracers/_ctrace.c"], optional=True),
    ],
)
