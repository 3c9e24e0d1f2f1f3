"""Sampling distributions used by scenarios (reading times, outsourcing turnaround).

Every distribution has the same signature, ``sample(rng, size) -> ndarray``, and never touches a
global random state: the caller owns the stream (see :mod:`sim.streams`). Parameters are given
in the natural units of the field that holds the distribution (minutes for reading times, hours
for turnaround), as mean and standard deviation rather than shape/scale, because that is how
planners quote them.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator


class _Distribution(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @property
    def mean_value(self) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class Exponential(_Distribution):
    """Exponential with the given mean."""

    kind: Literal["exponential"] = "exponential"
    mean: PositiveFloat

    @property
    def mean_value(self) -> float:
        return self.mean

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.exponential(self.mean, size)


class Lognormal(_Distribution):
    """Lognormal parameterised by its own mean and standard deviation (not those of the log)."""

    kind: Literal["lognormal"] = "lognormal"
    mean: PositiveFloat
    sd: PositiveFloat

    @property
    def mean_value(self) -> float:
        return self.mean

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        sigma2 = np.log1p((self.sd / self.mean) ** 2)
        mu = np.log(self.mean) - sigma2 / 2
        return rng.lognormal(mu, np.sqrt(sigma2), size)


class Gamma(_Distribution):
    """Gamma parameterised by mean and standard deviation."""

    kind: Literal["gamma"] = "gamma"
    mean: PositiveFloat
    sd: PositiveFloat

    @property
    def mean_value(self) -> float:
        return self.mean

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        shape = (self.mean / self.sd) ** 2
        return rng.gamma(shape, self.mean / shape, size)


class Fixed(_Distribution):
    """Always the same value."""

    kind: Literal["fixed"] = "fixed"
    value: Annotated[float, Field(ge=0)]

    @property
    def mean_value(self) -> float:
        return self.value

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.value, dtype=float)


class Empirical(_Distribution):
    """Resample observed values with replacement (e.g. durations taken from a RIS export)."""

    kind: Literal["empirical"] = "empirical"
    values: tuple[Annotated[float, Field(ge=0)], ...]

    @model_validator(mode="after")
    def _not_empty(self) -> "Empirical":
        if not self.values:
            raise ValueError("an empirical distribution needs at least one value")
        return self

    @property
    def mean_value(self) -> float:
        return float(np.mean(self.values))

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.choice(np.asarray(self.values, dtype=float), size)


Distribution = Annotated[
    Union[Exponential, Lognormal, Gamma, Fixed, Empirical], Field(discriminator="kind")
]
