"""Shared fixtures and the hypothesis profiles.

Profiles: ``ci`` (default, bounded) and ``thorough`` (thousands of cases, run by hand:
``HYPOTHESIS_PROFILE=thorough pytest``).
"""

from __future__ import annotations

import os

import pandas as pd
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def newsroom() -> pd.DataFrame:
    """Three football articles, three election articles, and one wire story printed twice.

    By eye: football articles recommend football, election articles recommend
    elections, and the two wire copies never recommend each other.
    """
    return pd.DataFrame(
        {
            "article_id": ["foot-1", "foot-2", "foot-3", "vote-1", "vote-2", "vote-3", "wire-a", "wire-b"],
            "title": [
                "United win the cup final with a late goal",
                "Striker scores twice as United reach cup final",
                "Goalkeeper saves penalty in cup semi-final",
                "Parliament election: polls open across the country",
                "Election count shows narrow win for the opposition",
                "Voters queue at polling stations for the election",
                "Storm closes harbour and ferry routes",
                "Storm closes harbour and ferry routes",
            ],
            "summary": [
                "A late goal decided the cup final.",
                "Two goals sent United to the final.",
                "A penalty save took the keeper's side through.",
                "Polling stations opened for the parliament election.",
                "The opposition won the election by a few seats.",
                "Long queues formed at polling stations.",
                "A storm shut the harbour.",
                "A storm shut the harbour.",
            ],
            "body": [
                "United scored a late goal to win the cup final against City. The striker celebrated the goal.",
                "The striker scored two goals and United reached the cup final. Fans celebrated the goals.",
                "The goalkeeper saved a penalty and his team reached the cup final after the semi-final.",
                "Voters cast ballots in the parliament election. Polling stations opened early for voters.",
                "The election count gave the opposition a narrow win. Ballots were counted overnight.",
                "Voters waited at polling stations to cast ballots in the election for parliament.",
                "A storm with strong winds closed the harbour and all ferry routes on the coast.",
                "A storm with strong winds closed the harbour and all ferry routes on the coast.",
            ],
            "published": [
                "2024-05-01",
                "2024-04-20",
                "2024-04-10",
                "2024-05-02",
                "2024-05-03",
                "2024-05-02 08:00",
                "2024-05-04",
                "2024-05-04",
            ],
            "views": [1000, 50, 10, 800, 20000, 5, 100, 100],
            "category": ["sport", "sport", "sport", "politics", "politics", "politics", "weather", "weather"],
        }
    )


@pytest.fixture(scope="session")
def cluster_client():
    """The session's Dask client: a LocalCluster of two single-threaded worker processes (one per test run)."""
    distributed = pytest.importorskip(
        "dask.distributed", reason="dask.distributed is not installed (pip install 'recommender[dask]')"
    )
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def client(cluster_client):
    """The session's Dask client with both workers up (a worker killed by an earlier test is restarted by its
    nanny)."""
    cluster_client.wait_for_workers(2, timeout=60)
    return cluster_client
