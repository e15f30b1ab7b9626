"""Benchmarks behind ``make bench``.

- :mod:`devtools.bench.runner`: N waiting file triggers inside Airflow's own ``TriggerRunner``
  (CPU per trigger-second and per poke, memory, loop lag, detection latency), waitwise next
  to Airflow's ``FileTrigger``; :mod:`devtools.bench._hosted` is the measured child process.
- :mod:`devtools.bench.policies`: adaptive polling against fixed, backoff and jitter policies
  on simulated arrivals (pokes per wait, detection latency, goals); no Airflow.
- :mod:`devtools.bench.learning`: the cost of fitting a source's history, and the event loop's
  lateness while 1,000 learned waits of 100 sources start.
- :mod:`devtools.bench.pooling`: batch triggers against per-file ones in Airflow's runner (CPU,
  a 10,000-file landing), inotify against polling, syscalls per tick of the pooled directory
  scan, pooling over two triggerer processes.
"""

from __future__ import annotations
