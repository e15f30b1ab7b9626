"""Airflow DAGs of the fan-in end-to-end test (tests/e2e/test_fanin.py): wiring only.

``fanin_seed`` (failed waits of the source), ``fanin_floor`` and ``fanin_waitwise`` (N tasks
each), built by :func:`devtools.bench.fanin.build_dag` exactly as ``make bench`` builds them.
"""

from __future__ import annotations

from devtools.bench.fanin import build_dag

N = 100  # tests/e2e/test_fanin.py checks the parsed DAGs have this many tasks

seed = build_dag("seed", N, __file__)
floor = build_dag("floor", N, __file__)
waitwise = build_dag("waitwise", N, __file__)
