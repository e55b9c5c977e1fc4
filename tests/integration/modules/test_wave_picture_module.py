"""osbs_wave_picture run as Ansible runs a module: the pictures land beside the report path given (its .json
dropped), and without Graphviz's dot on PATH the module warns, writes the Markdown and does not fail."""

from __future__ import annotations

import json
import os

import pytest

from testlib import Engine, run_module

ROWS = [
    {"image": "registry.example.com/osbs/app:latest", "namespace": "osbs", "buildconfig": "app-main", "action": "rebuilt",
     "parents": ["osbs/osbs-base:latest"], "build": "app-main-2", "nvr": "osbs-app-1.0-2", "reason": ""},
    {"image": "registry.example.com/osbs/a\"b<c>]d", "namespace": "osbs", "buildconfig": "odd-main", "action": "failed",
     "parents": ["osbs/app-main"], "build": None, "reason": "no such commit"},
]


@pytest.fixture
def host(tmp_path):
    return Engine(tmp_path / "no-engine", {"HOME": str(tmp_path)})


def picture(host, path):
    return run_module(host, "osbs_wave_picture", dict(rows=ROWS, root="osbs/osbs-base:latest", digest="sha256:" + "1" * 64,
                                                      path=str(path)))


def test_the_pictures_are_written_beside_the_report(host, tmp_path):
    result = picture(host, tmp_path / "report.json")
    assert result.get("failed") is not True, result
    assert (result["svg_path"], result["markdown_path"], result["svg_error"]) == (
        str(tmp_path / "report.svg"), str(tmp_path / "report.md"), None)
    svg = (tmp_path / "report.svg").read_text()
    assert ">osbs/app:latest</text>" in svg and ">REBUILT</text>" in svg
    assert ">osbs/a&quot;b&lt;c&gt;]d</text>" in svg and ">FAILED</text>" in svg
    markdown = (tmp_path / "report.md").read_text()
    assert '  n2["osbs/a#34;b#60;c#62;#93;d<br/>FAILED<br/>osbs/odd-main<br/>no such commit"]' in markdown
    assert result["changed"] is True and picture(host, tmp_path / "report.json")["changed"] is False


def test_without_dot_the_module_warns_and_writes_the_markdown(tmp_path):
    no_dot = Engine(tmp_path / "no-engine", {"HOME": str(tmp_path), "PATH": os.pathsep.join(["/nonexistent"])})
    result = picture(no_dot, tmp_path / "report")
    assert result.get("failed") is not True, result
    assert result["svg_path"] is None and not (tmp_path / "report.svg").exists()
    # (ansible-core 2.19 returns warnings as objects, earlier releases as text)
    assert "the wave's SVG picture was not made: Graphviz's dot was not found on PATH" in json.dumps(result["warnings"])
    assert '  n1["osbs/app:latest<br/>REBUILT<br/>' in (tmp_path / "report.md").read_text()
