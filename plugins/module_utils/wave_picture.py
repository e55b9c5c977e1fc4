# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wave as a picture: the dependency graph with what happened to each image, as SVG (Graphviz) and as a
Mermaid block in a Markdown summary (which CI systems and Git hosts render).

Every name in the picture comes from other people's BuildConfigs and repositories, so none is trusted: nodes
are identified by their position (n0, n1, ...), and each label is escaped for the language it is written in
(a DOT quoted string, a Mermaid entity code, Markdown/HTML).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from urllib.parse import quote

from ansible_collections.osbs.flow.plugins.module_utils.git_input import mask_credentials
from ansible_collections.osbs.flow.plugins.module_utils.wave_report import short_digest

DOT_TIMEOUT = 60  # seconds; dot lays out thousands of nodes in less
ROOT_OUTCOME = "new image"
# The outcome's colour: fill and border, the same in both pictures.
COLOURS = {
    "rebuilt": ("#c6efce", "#2e7d32"),
    "adopted": ("#cfe2f3", "#1f5fa8"),
    "unchanged": ("#eeeeee", "#757575"),
    "skipped": ("#fff2cc", "#b38f00"),
    "failed": ("#f4cccc", "#c62828"),
    "blocked": ("#fce5cd", "#e65100"),
    ROOT_OUTCOME: ("#ffffff", "#000000"),
}
_OTHER = ("#ffffff", "#9e9e9e")


class Node:
    def __init__(self, ident, title, outcome, lines):
        self.ident = ident
        self.title = title
        self.outcome = outcome
        self.lines = lines  # what the node shows under its title, each already plain text


def _plain(text):
    """One line of plain text: credentials masked, control characters and runs of space made single spaces."""
    text = mask_credentials(str(text))
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def _image(row):
    """The image as people name it: the repository without the registry host, else the BuildConfig."""
    image = row.get("image") or ""
    first, _sep, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        image = rest
    return image or row.get("buildconfig") or "?"


def wave_nodes(rows, root, root_digest=None):
    """(nodes, edges) of the wave: the new image first, then one node per row; edges from base to dependent."""
    nodes = [Node("n0", root, ROOT_OUTCOME, [short_digest(root_digest)] if root_digest else [])]
    ident_of = {root: "n0"}
    for index, row in enumerate(rows, 1):
        ident = "n%d" % index
        ident_of["%s/%s" % (row.get("namespace"), row.get("buildconfig"))] = ident
        lines = ["%s/%s" % (row.get("namespace"), row.get("buildconfig"))]
        if row.get("nvr"):
            lines.append(row["nvr"])
        if row.get("build"):
            lines.append("build %s" % row["build"])
        if row.get("action") in ("skipped", "failed", "blocked") and row.get("reason"):
            reason = _plain(row["reason"])
            lines.append(reason if len(reason) <= 80 else reason[:77] + "...")
        nodes.append(Node(ident, _image(row), row.get("action") or "?", [_plain(line) for line in lines]))
    edges = []
    for index, row in enumerate(rows, 1):
        for parent in row.get("parents") or []:
            if parent in ident_of:
                edges.append((ident_of[parent], "n%d" % index))
    return nodes, edges


# -- Graphviz ------------------------------------------------------------------------------------------------------

def _dot_string(text):
    """A DOT double-quoted string whose text Graphviz shows as it is: `&` as `&amp;` (Graphviz decodes entities
    such as `&lt;` in labels), `\\` and `"` escaped (a backslash would otherwise start an escape such as \\N or
    \\l), lines joined with DOT's own `\\n`."""
    return '"%s"' % "\\n".join(line.replace("&", "&amp;").replace("\\", "\\\\").replace('"', '\\"') for line in text.split("\n"))


def dot_source(nodes, edges):
    out = ["digraph wave {", '  rankdir="LR";',
           '  node [shape="box", style="rounded,filled", fontname="Helvetica", fontsize="11"];']
    for node in nodes:
        fill, border = COLOURS.get(node.outcome, _OTHER)
        label = "\n".join([_plain(node.title), node.outcome.upper()] + node.lines)
        out.append('  %s [label=%s, fillcolor="%s", color="%s"];' % (node.ident, _dot_string(label), fill, border))
    for parent, child in edges:
        out.append("  %s -> %s;" % (parent, child))
    out.append("}")
    return "\n".join(out) + "\n"


def render_svg(dot_text):
    """(svg text, None), or (None, why not): the picture is never worth failing a wave for."""
    dot = shutil.which("dot")
    if not dot:
        return None, "Graphviz's dot was not found on PATH (Debian/Ubuntu: apt-get install graphviz; RPM: dnf install graphviz)"
    try:
        # The graph on stdin and fixed options only: nothing from a BuildConfig reaches the command line.
        # UTF-8 both ways whatever the locale: dot reads and writes UTF-8 (its default charset), and a name or a
        # localised git message is not ASCII.
        proc = subprocess.run([dot, "-Tsvg"], input=dot_text.encode("utf-8", errors="replace"), capture_output=True,
                              timeout=DOT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return None, "dot did not finish within %d s" % DOT_TIMEOUT
    except OSError as exc:
        return None, "dot could not run: %s" % exc
    if proc.returncode != 0:
        return None, "dot failed (exit %d): %s" % (proc.returncode, _plain(proc.stderr.decode("utf-8", errors="replace"))[:300])
    return proc.stdout.decode("utf-8", errors="replace"), None


# -- Mermaid and Markdown ----------------------------------------------------------------------------------------

_MERMAID_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:/_+=@-")


def _mermaid_text(text):
    """Text for a Mermaid label: every character but plain ones as an entity code (`#60;` for `<`), so no quote,
    bracket, pipe or markup of a name can end the label or add to the graph."""
    return "".join(ch if ch in _MERMAID_SAFE else "#%d;" % ord(ch) for ch in text)


def mermaid_source(nodes, edges):
    out = ["flowchart LR"]
    for node in nodes:
        label = "<br/>".join(_mermaid_text(part) for part in [_plain(node.title), node.outcome.upper()] + node.lines)
        out.append('  %s["%s"]' % (node.ident, label))
    for parent, child in edges:
        out.append("  %s --> %s" % (parent, child))
    for outcome, (fill, border) in sorted(COLOURS.items()):
        idents = [node.ident for node in nodes if node.outcome == outcome]
        if idents:
            css = outcome.replace(" ", "_")
            out.append("  classDef %s fill:%s,stroke:%s" % (css, fill, border))
            out.append("  class %s %s" % (",".join(idents), css))
    return "\n".join(out) + "\n"


def _markdown_cell(text):
    """A Markdown table cell: HTML's special characters as entities, and `|`, backslash and backtick escaped."""
    text = _plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "\\|`*_[]":
        text = text.replace(ch, "\\" + ch)
    return text or "-"


def markdown_summary(nodes, edges, root, svg_name=None, svg_error=None):
    counts = {}
    for node in nodes[1:]:
        counts[node.outcome] = counts.get(node.outcome, 0) + 1
    out = ["# Autorebuild wave of %s" % _markdown_cell(root), "",
           ", ".join("%d %s" % (count, _markdown_cell(outcome)) for outcome, count in sorted(counts.items())) or "no dependents", ""]
    if svg_name:
        out += ["Picture: [%s](%s)" % (_markdown_cell(svg_name), quote(svg_name)), ""]
    elif svg_error:
        out += ["No SVG picture: %s." % _markdown_cell(svg_error), ""]
    out += ["```mermaid", mermaid_source(nodes, edges).rstrip("\n"), "```", "",
            "| image | outcome | details |", "| --- | --- | --- |"]
    for node in nodes[1:]:
        out.append("| %s | %s | %s |" % (_markdown_cell(node.title), _markdown_cell(node.outcome), "<br>".join(_markdown_cell(line) for line in node.lines)))
    return "\n".join(out) + "\n"


def _write_if_changed(path, text, check_mode):
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except OSError:
        pass
    if not check_mode:
        # A new file of a name nobody can guess (O_EXCL, no link followed) in the same directory, renamed over the
        # old one: the report directory may be shared (/var/tmp), where a planted link at a fixed name would make
        # this user overwrite the link's target.
        try:
            mode = os.stat(path).st_mode & 0o777
        except OSError:
            mode = 0o644
        handle, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=os.path.dirname(path) or ".")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                os.fchmod(out.fileno(), mode)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    return True


def write_wave_picture(rows, root, root_digest, base_path, check_mode=False):
    """Write `<base_path>.md` (summary with a Mermaid block) and `<base_path>.svg` (when dot can draw it).

    Returns the module result: the paths written, `svg_error` when there is no SVG, and `changed`.
    """
    nodes, edges = wave_nodes(rows, root, root_digest)
    svg_path, markdown_path = base_path + ".svg", base_path + ".md"
    svg, svg_error = render_svg(dot_source(nodes, edges))
    changed = False
    if svg is not None:
        changed |= _write_if_changed(svg_path, svg, check_mode)
    markdown = markdown_summary(nodes, edges, root, os.path.basename(svg_path) if svg is not None else None, svg_error)
    changed |= _write_if_changed(markdown_path, markdown, check_mode)
    return {
        "changed": changed,
        "markdown_path": markdown_path,
        "svg_path": svg_path if svg is not None else None,
        "svg_error": svg_error,
        "nodes": len(nodes) - 1,
    }
