"""The one compiled part: worker/_pageshare.c (worker/page_share.py). Optional: without a C
compiler the install goes on and the workers run without page sharing (the orchestrator
says so once). Everything else is declared in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("worker._pageshare", ["worker/_pageshare.c"], optional=True),
    ],
)
