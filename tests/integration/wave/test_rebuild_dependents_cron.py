"""The cron example of docs/awx-and-ci.md runs: its crontab entry is one line, and the wrapper script it calls runs
the playbook against osbs-local with cron's environment (PATH=/usr/bin:/bin, nothing else but HOME), the credentials
from the environment file, one run at a time."""

from __future__ import annotations

import fcntl
import re
import shlex
import subprocess

from testlib import COLLECTIONS, REPO, VENV_BIN, module_env

DOC = REPO / "docs" / "awx-and-ci.md"
WRAPPER = REPO / "docs" / "examples" / "osbs-rebuild-dependents.sh"
UNTRACKED = "registry.example.com/cron-nobody-tracks:latest"


def cron_section():
    text = DOC.read_text()
    return text[text.index("### A cron job"):text.index("### Letting the cluster notice new images itself")]


def test_the_crontab_entry_is_one_line_calling_the_wrapper():
    block = re.search(r"```\n(# /etc/cron.d/[^\n]*\n)(.*?)```", cron_section(), re.S)
    assert block, cron_section()
    entries = [line for line in block.group(2).splitlines() if line.strip() and not line.startswith("#")]
    assert len(entries) == 1, entries
    fields = entries[0].split()
    assert not entries[0].rstrip().endswith("\\")
    assert len(fields) == 7 and fields[5] == "osbs" and fields[6] == "/usr/local/libexec/osbs-rebuild-dependents", fields
    assert "osbs-rebuild-dependents.sh" in cron_section()


def run_wrapper(tmp_path, env_file, vars_file):
    # What cron gives a job: HOME of the user, PATH=/usr/bin:/bin, a shell; the paths of the files by environment.
    return subprocess.run(
        ["/usr/bin/env", "-i", "HOME=%s" % (tmp_path / "home"), "PATH=/usr/bin:/bin", "SHELL=/bin/sh",
         "OSBS_REBUILD_ENV=%s" % env_file, "OSBS_REBUILD_VARS=%s" % vars_file, "/bin/sh", str(WRAPPER)],
        capture_output=True, text=True, timeout=600)


def test_the_wrapper_runs_the_playbook_from_cron_s_environment_once_at_a_time(osbs_engine, tmp_path):
    (tmp_path / "home").mkdir()
    settings = {key: value for key, value in module_env(osbs_engine).items()
                if key.startswith(("K8S_AUTH_", "REGISTRY_", "ANSIBLE_", "PYTHON"))}
    settings.update(OSBS_NAMESPACE=osbs_engine.namespace, ANSIBLE_PLAYBOOK=str(VENV_BIN / "ansible-playbook"),
                    ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), PULP_PASSWORD="cron-s3cret")
    env_file = tmp_path / "rebuild.env"
    env_file.write_text("".join("%s=%s\n" % (key, shlex.quote(value)) for key, value in settings.items()))
    env_file.chmod(0o600)
    vars_file = tmp_path / "base-images.yml"
    vars_file.write_text("base_images:\n  - %s\n" % UNTRACKED)

    first = run_wrapper(tmp_path, env_file, vars_file)
    assert first.returncode == 0, (first.stdout, first.stderr)
    [log] = (tmp_path / "home" / ".local" / "state" / "osbs-flow").glob("rebuild-*.log")
    text = log.read_text()
    assert "%s: no ImageStreamTag tracks it" % UNTRACKED in text and "failed=0" in text, text[-3000:]
    assert "cron-s3cret" not in text
    lock = tmp_path / "home" / ".cache" / "osbs-flow" / "rebuild-dependents.lock"
    assert lock.exists()

    # A run while another holds the lock runs nothing and exits 0.
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        second = run_wrapper(tmp_path, env_file, vars_file)
    assert second.returncode == 0 and "another run holds" in second.stderr, (second.stdout, second.stderr)
    assert log.read_text() == text
