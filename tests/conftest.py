"""Shared test setup.

Hypothesis profiles: ``ci`` (the default under CI=true, sized for a 2-core machine inside the 20-minute
budget), ``dev`` (the default otherwise), ``long`` (``HYPOTHESIS_PROFILE=long``, for ``make fuzz-long``-style
soaks). Property tests leave ``max_examples`` to the profile.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=600, deadline=None, derandomize=False, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", max_examples=100, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long", max_examples=5000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def backend() -> str:
    """The backend this run exercises (TILLWIRE_BACKEND, default native)."""
    from protocols import default_backend

    return default_backend()
