# Only here because cffi_modules cannot be expressed in pyproject.toml; all metadata lives there.
from setuptools import setup

setup(cffi_modules=["native/build_ffi.py:ffibuilder"])
