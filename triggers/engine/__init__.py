"""The async machinery every trigger kind shares.

- :mod:`.probe`: the contract between the hub and a kind of check (``Prober``), and the
  isolation of one query's failure from the others in its batch;
- :mod:`.progress`: what a wait has seen (``Tally``) and the one decision after each poke;
- :mod:`.hub`: the poll scheduler, one per event loop, batching every due check of every kind;
- :mod:`.wait`: the life of one wait (anchor, admission, windows, re-opening);
- :mod:`.ending`: how a wait ends (payload, history record, metrics, Airflow event).
"""

from __future__ import annotations
