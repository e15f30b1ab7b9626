"""Benchmarks behind ``make bench``.

- :mod:`devtools.bench.runner`: N waiting file triggers inside Airflow's own ``TriggerRunner``
  (CPU per trigger-second and per poke, memory, loop lag, detection latency), waitwise next
  to Airflow's ``FileTrigger``; :mod:`devtools.bench._hosted` is the measured child process.
"""

from __future__ import annotations
