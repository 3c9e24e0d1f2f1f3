"""Build of the one compiled module, sim._loops (Cython); everything else is in pyproject.toml.

-ffp-contract=off: no fused multiply-add, so the compiled statistics give numpy's bits on any CPU."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize([Extension("sim._loops", ["sim/_loops.pyx"], extra_compile_args=["-ffp-contract=off"])],
                            compiler_directives={"language_level": 3}))
