"""The collection as users get it: the tarball of `ansible-galaxy collection build`, installed into an empty path.

The tarball holds the collection and nothing of the engine, tests or benchmarks; installed from it, the
build playbook runs the installed copy's playbook, roles and modules, not the checkout's.
"""

import os
import re
import subprocess
import tarfile

import pytest

from testlib import REPO, VENV_BIN, make_git_repo, run_playbook


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    output = tmp_path_factory.mktemp("tarball")
    subprocess.run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(output), str(REPO)],
        check=True, capture_output=True, text=True,
    )
    [built] = output.glob("osbs-flow-*.tar.gz")
    return built


def test_tarball_has_the_collection_and_leaves_the_rest_out(tarball):
    with tarfile.open(tarball) as archive:
        top = {name.split("/", 1)[0] for name in archive.getnames()}
        names = set(archive.getnames())
    assert {"plugins", "roles", "playbooks", "meta", "docs", "README.md", "MANIFEST.json"} <= top
    assert not top & {"osbs_local", "tests", "bench", "extensions", "hack", ".ci", "Makefile", "pyproject.toml", "build"}
    for module in ("osbs_buildconfig", "osbs_build", "reactor_import_image", "pulp_sync", "osbs_autorebuild",
                   "osbs_image_tags"):
        assert "plugins/modules/%s.py" % module in names
    assert "playbooks/build.yml" in names
    assert "playbooks/rebuild_dependents.yml" in names and "plugins/modules/osbs_base_images.py" in names
    assert "roles/rebuild_dependents/tasks/wave.yml" in names
    assert "roles/image_tags/tasks/main.yml" in names
    assert "meta/runtime.yml" in names
    # What galaxy.yml's license names, and what meta/execution-environment.yml points at.
    assert {"LICENSE", "requirements.txt", "bindep.txt"} <= top
    # The execution environment's build definition names paths of the checkout (build/ee/...).
    assert "execution-environment.yml" not in top


@pytest.mark.slow
def test_the_installed_tarball_runs_the_build_playbook(osbs_engine, tarball, tmp_path):
    installed = tmp_path / "collections"
    installed.mkdir()
    # Only the empty path: with the checkout's link on ANSIBLE_COLLECTIONS_PATH, ansible-galaxy would find
    # osbs.flow installed already and install nothing.
    only_installed = {"ANSIBLE_COLLECTIONS_PATH": str(installed), "PYTHONPATH": ""}
    # kubernetes.core, the one dependency, comes with the venv's ansible package: nothing is downloaded.
    subprocess.run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "-p", str(installed), str(tarball)],
        check=True, capture_output=True, text=True, env=dict(os.environ, **only_installed),
    )
    collection = installed / "ansible_collections" / "osbs" / "flow"
    assert (collection / "MANIFEST.json").is_file()

    uri, _ = make_git_repo(tmp_path / "tarball-scratch", {
        "Dockerfile": "FROM scratch\nCOPY hello /hello\nLABEL name=osbs/tarball-scratch\n",
        "hello": "hello from the installed collection\n",
    })
    result = run_playbook(osbs_engine, "osbs.flow.build", {
        "git_uri": uri, "git_branch": "main", "registry_uri": osbs_engine.registry,
        "registry_secret": osbs_engine.registry_secret, "osbs_namespace": osbs_engine.namespace, "autorebuild": False,
    # -vvv: Ansible names the file of every task and module it runs.
    }, env=dict(only_installed, ANSIBLE_VERBOSITY="3"))
    out = result.stdout
    assert result.returncode == 0, out[-3000:]
    assert "Complete (started)" in out, out[-3000:]
    assert "osbs-tarball-scratch:latest (updated)" in out, out[-3000:]

    task_paths = re.findall(r"^task path: (\S+):\d+$", out, re.MULTILINE)
    module_files = re.findall(r"^Using module file (\S+)$", out, re.MULTILINE)
    flow_files = [path for path in task_paths + module_files if "/osbs/flow/" in path]
    assert any(path.endswith("/playbooks/build.yml") for path in flow_files), task_paths
    assert any(path.endswith("/roles/build/tasks/main.yml") for path in flow_files), task_paths
    assert any(path.endswith("/plugins/modules/osbs_build.py") for path in flow_files), module_files
    assert all(path.startswith(str(collection) + "/") for path in flow_files), flow_files
