"""The wave's picture: the SVG Graphviz's dot draws and the Mermaid block of the Markdown summary show every
node's name and outcome, a hostile name stays text in both, and without dot the Markdown is still written."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys

from ansible_collections.osbs.flow.plugins.module_utils.wave_picture import write_wave_picture

ROOT = "osbs/osbs-base:latest"
# A repository name as hostile as a BuildConfig can carry: quotes, angle brackets, brackets, a pipe, a backslash,
# a DOT escape and Mermaid/Markdown syntax, no newline.
HOSTILE = 'ev"il<b>]x[|y\\N" -> n0; %%{init}%% `z`'


def rows():
    def row(name, action, parents, **extra):
        return dict({"image": "registry.example.com/osbs/%s:latest" % name, "namespace": "osbs", "buildconfig": name + "-main",
                     "action": action, "parents": parents, "build": None, "reason": ""}, **extra)
    return [
        row("app", "rebuilt", [ROOT], build="app-main-2", nvr="osbs-app-1.0-2"),
        row("tool", "skipped", [ROOT], reason="autorebuild disabled by .osbs-repo-config"),
        row("leaf", "adopted", ["osbs/app-main"], build="leaf-main-5", nvr="osbs-leaf-1.0-5"),
        row("broken", "failed", ["osbs/app-main"], build="broken-main-1", reason="build broken-main-1 Failed: DockerBuildFailed"),
        row("under", "blocked", ["osbs/broken-main"], reason="its base broken-main failed"),
        row("same", "unchanged", [ROOT]),
        dict(row("x", "rebuilt", ["osbs/app-main"], build="h-1", nvr="h-1.0-1"), image="registry.example.com/osbs/" + HOSTILE),
    ]


def nodes_of(svg):
    """{node id: its text lines} from dot's SVG, unescaped as a viewer shows them."""
    found = {}
    for ident, body in re.findall(r'<g id="node\d+" class="node">\s*<title>(n\d+)</title>(.*?)</g>', svg, re.S):
        found[ident] = [html.unescape(t) for t in re.findall(r"<text[^>]*>(.*?)</text>", body, re.S)]
    return found


def test_the_svg_and_the_mermaid_block_show_each_image_and_what_happened_to_it(tmp_path):
    result = write_wave_picture(rows(), ROOT, "sha256:" + "ab" * 32, str(tmp_path / "wave"))
    assert result == {"changed": True, "markdown_path": str(tmp_path / "wave.md"), "svg_path": str(tmp_path / "wave.svg"),
                      "svg_error": None, "nodes": 7}
    svg = (tmp_path / "wave.svg").read_text()
    assert nodes_of(svg) == {
        "n0": [ROOT, "NEW IMAGE", "sha256:abababababab"],
        "n1": ["osbs/app:latest", "REBUILT", "osbs/app-main", "osbs-app-1.0-2", "build app-main-2"],
        "n2": ["osbs/tool:latest", "SKIPPED", "osbs/tool-main", "autorebuild disabled by .osbs-repo-config"],
        "n3": ["osbs/leaf:latest", "ADOPTED", "osbs/leaf-main", "osbs-leaf-1.0-5", "build leaf-main-5"],
        "n4": ["osbs/broken:latest", "FAILED", "osbs/broken-main", "build broken-main-1", "build broken-main-1 Failed: DockerBuildFailed"],
        "n5": ["osbs/under:latest", "BLOCKED", "osbs/under-main", "its base broken-main failed"],
        "n6": ["osbs/same:latest", "UNCHANGED", "osbs/same-main"],
        "n7": ["osbs/" + HOSTILE, "REBUILT", "osbs/x-main", "h-1.0-1", "build h-1"],
    }
    edges = set(re.findall(r"<title>(n\d+)&#45;&gt;(n\d+)</title>", svg))
    assert edges == {("n0", "n1"), ("n0", "n2"), ("n1", "n3"), ("n1", "n4"), ("n4", "n5"), ("n0", "n6"), ("n1", "n7")}

    markdown = (tmp_path / "wave.md").read_text()
    mermaid = markdown.split("```mermaid\n", 1)[1].split("\n```", 1)[0]
    labels = dict(re.findall(r'^  (n\d+)\["([^"]*)"\]$', mermaid, re.M))
    assert labels["n1"] == "osbs/app:latest<br/>REBUILT<br/>osbs/app-main<br/>osbs-app-1.0-2<br/>build app-main-2"
    assert labels["n2"].startswith("osbs/tool:latest<br/>SKIPPED<br/>")
    assert labels["n4"].startswith("osbs/broken:latest<br/>FAILED<br/>") and labels["n5"].startswith("osbs/under:latest<br/>BLOCKED<br/>")
    assert labels["n3"].startswith("osbs/leaf:latest<br/>ADOPTED<br/>") and labels["n6"].startswith("osbs/same:latest<br/>UNCHANGED<br/>")
    # The hostile name is entity codes in its label: none of its characters can close the label or add a line.
    hostile = labels["n7"].split("<br/>")[0]
    assert re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), hostile) == "osbs/" + HOSTILE
    assert not set(hostile) & set('"[]<>|\\`%{}')
    assert set(re.findall(r"^  (n\d+) --> (n\d+)$", mermaid, re.M)) == edges
    assert re.findall(r"^  class (\S+) (\w+)$", mermaid, re.M) == [
        ("n3", "adopted"), ("n5", "blocked"), ("n4", "failed"), ("n0", "new_image"), ("n1,n7", "rebuilt"), ("n2", "skipped"),
        ("n6", "unchanged")]
    assert "Picture: [wave.svg](wave.svg)" in markdown
    assert "| osbs/ev\"il&lt;b&gt;\\]x\\[\\|y\\\\N\" -&gt; n0; %%{init}%% \\`z\\` | rebuilt |" in markdown

    again = write_wave_picture(rows(), ROOT, "sha256:" + "ab" * 32, str(tmp_path / "wave"))
    assert again["changed"] is False


def test_without_dot_the_markdown_is_written_and_says_there_is_no_svg(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = write_wave_picture(rows(), ROOT, None, str(tmp_path / "wave"))
    assert result["svg_path"] is None and not (tmp_path / "wave.svg").exists()
    assert result["svg_error"].startswith("Graphviz's dot was not found on PATH")
    markdown = (tmp_path / "wave.md").read_text()
    assert "No SVG picture: Graphviz's dot was not found on PATH" in markdown
    assert '  n4["osbs/broken:latest<br/>FAILED<br/>' in markdown


def test_check_mode_writes_nothing(tmp_path):
    result = write_wave_picture(rows(), ROOT, None, str(tmp_path / "wave"), check_mode=True)
    assert result["changed"] is True and list(tmp_path.iterdir()) == []


ENTITIES = "R&amp;D &#60;x&#62; &lt;y&gt; &copy;"  # Graphviz decodes these in a label unless `&` is escaped


def test_entities_in_a_name_are_drawn_as_written_not_decoded(tmp_path):
    hostile = [dict(rows()[0], reason="git said: %s" % ENTITIES, action="failed", nvr="nvr-" + ENTITIES)]
    write_wave_picture(hostile, ROOT, None, str(tmp_path / "wave"))
    assert nodes_of((tmp_path / "wave.svg").read_text())["n1"] == [
        "osbs/app:latest", "FAILED", "osbs/app-main", "nvr-" + ENTITIES, "build app-main-2", "git said: " + ENTITIES]


def test_an_outcome_cannot_add_markup_or_rows_to_the_markdown(tmp_path):
    forged = [dict(rows()[0], action="weird|<i>x</i>\n| injected | row |")]
    write_wave_picture(forged, ROOT, None, str(tmp_path / "wave"))
    markdown = (tmp_path / "wave.md").read_text()
    assert "<i>" not in markdown and not re.search(r"^\| injected", markdown, re.M)
    table = markdown.split("| --- | --- | --- |\n", 1)[1]
    assert len(table.splitlines()) == 1 and table.count(" | ") == 2, table
    assert markdown.splitlines()[2] == "1 weird\\|&lt;i&gt;x&lt;/i&gt; \\| injected \\| row \\|"


def test_a_non_ascii_reason_under_a_non_utf8_locale_is_drawn(tmp_path):
    script = (
        "import sys; sys.path[:0] = %r\n"
        "from ansible_collections.osbs.flow.plugins.module_utils.wave_picture import write_wave_picture\n"
        "r = write_wave_picture([dict(buildconfig='app-main', namespace='osbs', image='r/osbs/app:latest', action='failed',"
        " parents=[], reason='Zugriff verweigert: \\u00fcber \\u2603')], 'osbs/base:latest', None, %r)\n"
        "print(r['svg_error'])\n" % (sys.path, str(tmp_path / "wave")))
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0", PYTHONIOENCODING="ascii")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0 and done.stdout == "None\n", done.stderr[-2000:]
    assert "Zugriff verweigert: über ☃" in nodes_of((tmp_path / "wave.svg").read_text(encoding="utf-8"))["n1"]


def test_the_files_are_written_through_a_new_temporary_file_not_a_planted_link(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    for pid_guess in range(os.getpid() - 50, os.getpid() + 50):
        os.symlink(victim, tmp_path / ("wave.md.tmp-%d" % pid_guess))
    write_wave_picture(rows(), ROOT, None, str(tmp_path / "wave"))
    assert victim.read_text() == "keep me"
    assert (tmp_path / "wave.md").read_text().startswith("# Autorebuild wave of")
    assert not (tmp_path / "wave.md").is_symlink() and oct((tmp_path / "wave.md").stat().st_mode & 0o777) == "0o644"
