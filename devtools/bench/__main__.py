"""``make bench``: the trigger-runner capacity table (see :mod:`devtools.bench.runner`)."""

from __future__ import annotations

from devtools.bench.runner import main

main()
