"""The collection tarball holds the collection and nothing of the engine, tests or benchmarks."""

import subprocess
import tarfile

from testlib import REPO, VENV_BIN


def test_tarball_has_the_collection_and_leaves_the_rest_out(tmp_path):
    subprocess.run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(REPO)],
        check=True, capture_output=True, text=True,
    )
    [tarball] = tmp_path.glob("osbs-flow-*.tar.gz")
    with tarfile.open(tarball) as archive:
        top = {name.split("/", 1)[0] for name in archive.getnames()}
        names = set(archive.getnames())
    assert {"plugins", "roles", "playbooks", "meta", "docs", "README.md", "MANIFEST.json"} <= top
    assert not top & {"osbs_local", "tests", "bench", "extensions", "hack", ".ci", "Makefile", "pyproject.toml", "build"}
    for module in ("osbs_buildconfig", "osbs_build", "reactor_import_image", "pulp_sync", "osbs_autorebuild"):
        assert "plugins/modules/%s.py" % module in names
    assert "playbooks/build.yml" in names
    assert "meta/runtime.yml" in names
