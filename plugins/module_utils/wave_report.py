# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Step 6, the report: one row per dependent, and the table a person reads."""

from __future__ import annotations

from ansible_collections.osbs.flow.plugins.module_utils.wave_graph import ROOT, key_name
from ansible_collections.osbs.flow.plugins.module_utils.wave_scheduler import ADOPTED, REBUILT, UNCHANGED

TABLE_COLUMNS = (("image", "IMAGE"), ("buildconfig", "BUILDCONFIG"), ("action", "ACTION"), ("build", "BUILD"),
                 ("nvr", "NVR"), ("digest", "NEW DIGEST"), ("duration", "DURATION"), ("reason", "REASON"))


def make_rows(graph, outcomes):
    rows = []
    for key in graph.order + sorted(k for k in graph.nodes if k not in graph.order):
        outcome = outcomes[key]
        bc = graph.nodes[key]
        rows.append({
            "image": ((bc.get("spec", {}).get("output") or {}).get("to") or {}).get("name"),
            "buildconfig": key[1],
            "namespace": key[0],
            "action": outcome.action,
            "build": outcome.build,
            "digest": outcome.digest if outcome.action in (REBUILT, ADOPTED, UNCHANGED) else None,
            "nvr": outcome.nvr,
            "unique_pull_spec": outcome.unique_pull_spec,
            "duration": outcome.duration,
            "reason": outcome.reason,
            "depth": graph.depth.get(key),
            "parents": sorted(key_name(p) if p != ROOT else "%s/%s" % graph.root for p in graph.parents[key]),
        })
        if outcome.warnings:
            rows[-1]["warnings"] = outcome.warnings
        if outcome.detail:
            rows[-1]["traceback"] = outcome.detail
    return rows


def short_digest(digest):
    """`sha256:` and the first 12 hex digits, as a person compares digests; None stays None."""
    if not digest:
        return digest
    algorithm, _sep, hexdigits = digest.partition(":")
    return "%s:%s" % (algorithm, hexdigits[:12]) if hexdigits else digest[:12]


def _cell(field, value):
    if value is None or value == "":
        return "-"
    if field == "digest":
        return value.split(":", 1)[-1][:12]
    if field == "duration":
        return "%.1fs" % value
    if field == "image":
        # The repository as people name the image (its `name` label), without the registry host.
        first, _sep, rest = value.partition("/")
        return rest if rest and ("." in first or ":" in first or first == "localhost") else value
    return " ".join(str(value).split())


def report_table(rows):
    """A fixed-width table, one line per dependent, for a person to read."""
    if not rows:
        return "no dependents"
    lines = [[title for _field, title in TABLE_COLUMNS]]
    for row in rows:
        lines.append([_cell(field, row[field]) for field, _title in TABLE_COLUMNS])
    widths = [max(len(line[i]) for line in lines) for i in range(len(TABLE_COLUMNS) - 1)]
    out = []
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths)] + [line[-1]]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)
