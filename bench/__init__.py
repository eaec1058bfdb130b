"""Benchmarks a user can rerun: `python -m bench` (see `python -m bench --help`).

They generate photos, build random-weight models of the real architectures (or use real
models where given), and print what each stage costs. Not tests: nothing here asserts a time.
"""
