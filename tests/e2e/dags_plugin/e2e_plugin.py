"""The DAGs of the plugin's end-to-end test (tests/e2e/test_plugin.py): two owners of sources.

They never run: the test writes their waits' history itself.  They exist so that the auth
manager knows them (it lists the DAGs a user may read from Airflow's database).
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

for dag_id in ("wwp_fin", "wwp_partner"):
    with DAG(dag_id, schedule=None, start_date=START, catchup=False):
        EmptyOperator(task_id="wait")
