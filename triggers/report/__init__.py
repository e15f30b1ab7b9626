"""The waitwise report: per tier and per source, from the wait history.

- :mod:`.summary`: :func:`summarize`, the figures (pure; definitions in its docstring).
- :mod:`.render`: :func:`text` (terminal tables) and :func:`html_page` (one offline page).
- :mod:`.cli`: ``waitwise report``, reading through one of the store's read paths.
"""

from __future__ import annotations

from .render import html_page, text
from .summary import Report, SourceSummary, TierSummary, summarize

__all__ = ["Report", "SourceSummary", "TierSummary", "html_page", "summarize", "text"]
