"""The DAGs of tests/e2e/test_asset_watcher.py: two asset watchers on one landing directory.

``ww_on_partner_file`` runs on each new ``partner_*.xml`` (source ``partner``, profile
``low`` with a 1 s poll so the test stays short); ``ww_on_customer_file`` on each new
``customer_*.csv``.  Both watch one directory with the same detection mode and poll settings,
so the triggerer serves them with one shared scan.  The directory and the history store's
root come from the environment the test gives Airflow.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from waitwise.triggers.asset import FileAssetTrigger
from waitwise.triggers.policy import Constant

LANDING = os.environ.get("WAITWISE_ASSET_DIR", "/tmp/waitwise-asset-landing")
STORE_ROOT = os.environ.get("WAITWISE_ASSET_STORE", "/tmp/waitwise-asset-store")
STORE = {"kind": "file", "root": STORE_ROOT}
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def watched(
    name: str, pattern: str, source: str | None = None, profile: str | None = None
) -> Asset:
    trigger = FileAssetTrigger(
        directory=LANDING,
        pattern=pattern,
        detect="poll",
        source=source,
        profile=profile,
        poll=Constant(1.0),
        store=STORE,
    )
    return Asset(name, watchers=[AssetWatcher(name=f"{name}_files", trigger=trigger)])


partner_drop = watched("ww_partner_drop", "partner_*.xml", source="partner", profile="low")
customer_drop = watched("ww_customer_drop", "customer_*.csv")

for dag_id, asset in (("ww_on_partner_file", partner_drop), ("ww_on_customer_file", customer_drop)):
    with DAG(dag_id, schedule=[asset], start_date=START, catchup=False):

        @task
        def landed(*, triggering_asset_events: Any = None) -> list[str]:
            """Return the paths of the files that triggered this run."""
            events = triggering_asset_events or {}
            return [e.extra["payload"]["path"] for evs in events.values() for e in evs]

        landed()
