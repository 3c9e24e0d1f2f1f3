"""Compiled loops for the statistics (numba), outside the event loop: the model stays a SimPy model.

A consortium-year's statistics are a few dozen sums over millions of exams. In numpy each is one or
more full passes with a full-size temporary; a compiled loop does them all in one pass with none.

Exact by construction, so regression fixtures stay bit-identical:

* no fast-math: every per-exam expression is evaluated as the numpy expression it replaces (IEEE
  double, same operations in the same order; LLVM does not fuse a multiply-add without it);
* a sum accumulates its terms in exam order, as ``np.bincount`` does (a pairwise ``np.sum`` is kept
  in numpy where the numpy code used one);
* tests (tests/test_fast_paths.py) compare every compiled result with its numpy definition.

Compiled code is cached beside the source (``__pycache__``; numba falls back to a per-user cache
directory where that is read-only), so only the first run after an install or a change compiles.
"""

from __future__ import annotations

import numba

compiled = numba.njit(cache=True, nogil=True, error_model="numpy")
"""Decorator for a statistics kernel: nopython, cached, no GIL held (a thread may run beside it), and
numpy's error model (x / 0 gives inf or NaN, as in numpy, instead of raising)."""
