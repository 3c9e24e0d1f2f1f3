"""Hypothesis profiles, so that the default suite (and CI) draws the same examples on every clone.

* ``reproducible`` (default): examples derived from each test's name (``derandomize``), no example database;
  a red CI can be rerun and bisected, and a fresh clone never meets an example the developer's did not.
* ``explore``: new random examples on every run, remembered in ``.hypothesis/`` when one fails; used by
  ``make test-slow`` and by ``EMRAD_HYPOTHESIS_PROFILE=explore make test``, where finding new cases is the point.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("reproducible", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("EMRAD_HYPOTHESIS_PROFILE", "reproducible"))
