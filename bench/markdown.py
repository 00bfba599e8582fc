"""Generated sections of hand-written Markdown pages.

A generated section sits between two HTML comments that name it::

    <!-- generated:NAME (by vmgrid.bench.TOOL; do not edit) -->
    ...
    <!-- end generated:NAME -->

so the prose around the tables stays hand-written and the figures are always rewritten from
results files, never typed.
"""

from __future__ import annotations

import re


def _begin(name: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- generated:{re.escape(name)}(?=[ \t]|-->)[^>]*-->\n")


def _end(name: str) -> str:
    return f"<!-- end generated:{name} -->"


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with the generated section ``name`` holding ``body``; one clear error if the
    page lacks the section's markers."""
    begin = _begin(name).search(text)
    end = text.find(_end(name), begin.end() if begin else 0)
    if begin is None or end < 0:
        raise ValueError(
            f"no generated section {name!r} in the page; expected '<!-- generated:{name} ... -->'"
            f" and '{_end(name)}' lines"
        )
    return text[: begin.end()] + body.rstrip("\n") + "\n" + text[end:]


def section_names(text: str) -> list[str]:
    """Names of the generated sections of a page, in order."""
    return re.findall(r"<!-- generated:([\w.-]+?)(?=[ \t]|-->)", text)


def fmt_pct(value: float, reference: float) -> str:
    """Relative difference as a signed percentage ("n/a" against 0)."""
    return f"{100 * (value - reference) / reference:+.1f} %" if reference else "n/a"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
