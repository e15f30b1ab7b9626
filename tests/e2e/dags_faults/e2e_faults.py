"""DAGs for the fault and feature end-to-end tests of issue 9 (wiring only, one scenario each).

Every sensor names a ``source`` so that its wait leaves a history record to count.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from waitwise.operators.file import FileArrivalSensor
from waitwise.triggers.policy import Constant

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
TICK = Constant(interval=1.0)

# Triggerer SIGKILL with a second triggerer running: one wait whose file lands after the kill,
# one whose file never lands (it must end at its original deadline).
with DAG("wwf_takeover", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="arrives",
        filepath="{{ dag_run.conf['file'] }}",
        poll=TICK,
        timeout=300,
        source="wwf_takeover",
    )
    FileArrivalSensor(
        task_id="expires",
        filepath="never/{{ run_id }}.csv",
        poll=TICK,
        timeout=75,
        soft_fail=True,
        source="wwf_takeover",
    )

# Scheduler restart while both wait in the triggerer.
with DAG("wwf_scheduler", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="arrives",
        filepath="{{ dag_run.conf['file'] }}",
        poll=TICK,
        timeout=300,
        source="wwf_scheduler",
    )
    FileArrivalSensor(
        task_id="expires",
        filepath="never/{{ run_id }}.csv",
        poll=TICK,
        timeout=30,
        soft_fail=True,
        source="wwf_scheduler",
    )

# api-server outage while a hard timeout needs its one worker run.
with DAG("wwf_apiserver", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="sense",
        filepath="never/{{ run_id }}.csv",
        poll=TICK,
        timeout=25,
        retries=2,
        retry_delay=dt.timedelta(seconds=1),
        source="wwf_apiserver",
    )

# Clear, then mark success, of a deferred sensor: both stop the wait (on_kill).
with DAG("wwf_cancel", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="sense",
        filepath="never/{{ run_id }}.csv",
        poll=TICK,
        timeout=600,
        source="wwf_cancel",
    )

# A dynamically mapped sensor: Airflow 3.3 runs execute() of each map index on a worker.
with DAG("wwf_mapped", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor.partial(
        task_id="sense",
        poll=TICK,
        timeout=300,
        source="wwf_mapped",
    ).expand(filepath=[f"mapped/{{{{ dag_run.conf['dir'] }}}}/{name}.csv" for name in "abc"])

# Listener plugin installed (test_features.py): success must reach on_task_instance_success.
with DAG("wwf_listener", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="sense",
        filepath="{{ dag_run.conf['file'] }}",
        poll=TICK,
        timeout=300,
        source="wwf_listener",
    )
