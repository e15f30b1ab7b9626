"""Simulated arrivals: the scenario generators, the demo's compressed days, ``waitwise simulate``.

:mod:`.scenarios` (pure) is the one generator of simulated arrivals, shared by the policy
benchmark and the demo; :mod:`.demo` (pure) compresses the exercise's three sources into
minutes; :mod:`.history` turns replayed days into history records; :mod:`.land` writes files;
:mod:`.wiring` is what the example DAGs give their sensors; :mod:`.cli` is ``waitwise
simulate``.
"""

from __future__ import annotations
