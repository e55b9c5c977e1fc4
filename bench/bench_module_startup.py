#!/usr/bin/env python3
"""Where one osbs.flow module task's time goes: interpreter, imports, client setup, requests.  Prints JSON.

    .venv/bin/python bench/bench_module_startup.py [--repeat 5] [--output FILE]

Each flow step is a module process (AnsiballZ): a fresh Python that imports Ansible's module
basics, kubernetes.core's client and the kubernetes library, builds the client from the
kubeconfig, then makes a few API requests. This times each layer in fresh processes (median of
--repeat), runs one real module (reactor_import_image, a no-op re-import, as in a no-op rerun)
under cProfile against a private osbs-local, and times a one-task playbook running that module
against the same module run bare, which gives Ansible's own cost per task. It also times a process
that makes the same kind of requests without the kubernetes library (ansible.module_utils.urls).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402
from benchlib import COLLECTIONS, median, module_env  # noqa: E402

PYTHON = sys.executable

LAYERS = {
    "python_startup": "pass",
    "ansible_module_basic": "import ansible.module_utils.basic",
    "kubernetes_client": "import kubernetes.client",
    "kubernetes_dynamic": "import kubernetes.dynamic",
    "kubernetes_core_module_utils": (
        "from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client; "
        "from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule"
    ),
    "osbs_flow_openshift_module_utils": "import ansible_collections.osbs.flow.plugins.module_utils.openshift",
}

# What a module process would cost without the kubernetes library (proposal F2): Ansible's module basics
# and its own HTTP helper, the kubeconfig read with PyYAML, and the same kind of requests
# reactor_import_image makes in a no-op (4 GETs), then exit.
LIGHT_CLIENT = """
import base64, json, os, ssl, tempfile
import ansible.module_utils.basic
from ansible.module_utils.urls import open_url
import yaml
config = yaml.safe_load(open(os.environ["K8S_AUTH_KUBECONFIG"]))
cluster = config["clusters"][0]["cluster"]
token = config["users"][0]["user"]["token"]
with tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False) as ca:
    ca.write(base64.b64decode(cluster["certificate-authority-data"]))
headers = {"Authorization": "Bearer " + token, "Accept": "application/json"}
for path in ("/apis/image.openshift.io/v1/namespaces/osbs/imagestreams/bench-base",
             "/apis/image.openshift.io/v1/namespaces/osbs/imagestreamtags/bench-base:latest",
             "/apis/build.openshift.io/v1/namespaces/osbs/buildconfigs",
             "/apis/build.openshift.io/v1/namespaces/osbs/buildconfigs"):
    try:
        json.load(open_url(cluster["server"] + path, headers=headers, ca_path=ca.name, validate_certs=True))
    except Exception as exc:  # a 404 is an answer too
        if getattr(exc, "code", None) != 404:
            raise
os.unlink(ca.name)
"""

ONE_TASK_PLAYBOOK = """\
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Re-import (nothing new)
      osbs.flow.reactor_import_image:
        namespace: "{{ ns }}"
        image: "{{ image }}"
"""


def timed_process(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output")
    args = parser.parse_args()
    report = {"benchmark": "module task anatomy", "machine": benchlib.machine(), "method": __doc__.split("\n\n", 2)[2].strip()}
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    layers = {}
    for name, code in LAYERS.items():
        layers[name] = round(median([timed_process([PYTHON, "-c", code], env) for _ in range(args.repeat)]), 3)
    report["fresh_process_import_s"] = layers

    workdir = Path(tempfile.mkdtemp(prefix="bench-module-"))
    engine = benchlib.start_engine(workdir / "osbs-local")
    try:
        benchlib.busybox_base(engine, "bench/base", workdir / "storage")
        image = "%s/bench/base:latest" % engine.registry
        menv = module_env(engine)
        module = COLLECTIONS / "ansible_collections" / "osbs" / "flow" / "plugins" / "modules" / "reactor_import_image.py"
        args_file = workdir / "args.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"namespace": engine.namespace, "image": image}}))
        subprocess.run([PYTHON, str(module), str(args_file)], env=menv, check=True, capture_output=True)  # first import
        bare = [timed_process([PYTHON, str(module), str(args_file)], menv) for _ in range(args.repeat)]
        light = [timed_process([PYTHON, "-c", LIGHT_CLIENT], menv) for _ in range(args.repeat)]
        report["module_process_s"] = {
            "reactor_import_image (no-op re-import), bare process": round(median(bare), 3),
            "without kubernetes: ansible basics + ansible.module_utils.urls + PyYAML kubeconfig, 4 GETs (proposal F2)":
                round(median(light), 3),
        }

        profile_file = workdir / "module.prof"
        subprocess.run([PYTHON, "-m", "cProfile", "-o", str(profile_file), str(module), str(args_file)],
                       env=menv, check=True, capture_output=True)
        stats = pstats.Stats(str(profile_file))
        total = stats.total_tt
        rows = []
        for (filename, line, function), (_cc, _nc, _tt, cumulative, _callers) in stats.stats.items():
            rows.append((cumulative, "%s:%s(%s)" % (filename.replace(str(Path(PYTHON).parent.parent), ".venv"), line, function)))
        rows.sort(reverse=True)
        interesting = [(c, n) for c, n in rows if any(key in n for key in (
            "get_api_client", "DynamicClient", "_find_and_load", "request", "exit_json", "run_import", "discover",
            "ssl", "load_kube_config", "AnsibleModule.__init__", "__init__.py:1(<module>)"))]
        report["module_cprofile"] = {
            "total_s": round(total, 3),
            "top_cumulative": [{"s": round(c, 3), "function": n} for c, n in rows[:25]],
            "selected": [{"s": round(c, 3), "function": n} for c, n in interesting[:25]],
        }
        out = io.StringIO()
        pstats.Stats(str(profile_file), stream=out).sort_stats("cumulative").print_stats(30)
        (workdir / "profile.txt").write_text(out.getvalue())

        playbook = workdir / "one-task.yml"
        playbook.write_text(ONE_TASK_PLAYBOOK)
        runs = [benchlib.run_playbook(engine, [str(playbook), "-e", json.dumps({"ns": engine.namespace, "image": image})])
                for _ in range(args.repeat)]
        empty = workdir / "empty.yml"
        empty.write_text("- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks: []\n")
        empty_runs = [benchlib.run_playbook(engine, [str(empty)]) for _ in range(args.repeat)]
        task = median([list(r["task_s"].values())[0] for r in runs])
        report["playbook"] = {
            "empty_playbook_wall_s": round(median([r["wall_s"] for r in empty_runs]), 3),
            "one_task_playbook_wall_s": round(median([r["wall_s"] for r in runs]), 3),
            "task_s (profile_tasks)": round(task, 3),
            "ansible_cost_per_module_task_s (task minus bare module process)": round(task - median(bare), 3),
        }
    finally:
        benchlib.stop_engine(engine)
        benchlib.run(["rm", "-rf", str(workdir)])
    benchlib.write_report(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
