"""osbs-local command line: up, down, status, serve, logs."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Optional

from .services import pki as pki_module
from .services.registry import Registry, pid_alive
from .state import (DEFAULT_STATE_DIR, NAMESPACE, Client, ensure_config, load_config, save_config, serve_pid, write_env,
                    write_kubeconfig)

START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
PHASES = ("New", "Pending", "Running", "Complete", "Failed", "Error", "Cancelled")


@contextlib.contextmanager
def _state_dir_lock(state_dir: Path):
    """One `up` or `down` at a time per state directory: three racing `up` on a fresh directory would each choose
    ports, write config.json and start a serve, two of which lose the serve lock and exit."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / ".up.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- commands ------------------------------------------------------------------------------------------
def cmd_up(args) -> int:
    state_dir = Path(args.state_dir).resolve()
    with _state_dir_lock(state_dir):
        return _up(args, state_dir)


def _up(args, state_dir: Path) -> int:
    if args.scheduled_import_interval is not None and not args.scheduled_import_interval > 0:
        print(f"osbs-local: --scheduled-import-interval is {args.scheduled_import_interval}: give a number of seconds "
              "above 0 (OpenShift's default is 900)", file=sys.stderr)
        return 2
    previous = load_config(state_dir)
    config = ensure_config(state_dir, args.port, args.builder, args.docker_host, args.build_workers)
    if args.scheduled_import_interval is not None:
        config["scheduled_import_seconds"] = args.scheduled_import_interval
        save_config(state_dir, config)

    pki = pki_module.ensure_pki(state_dir / "pki")
    client = Client(state_dir, config)
    pid = serve_pid(state_dir)
    restart_keys = ("api_port", "builder", "docker_host", "build_workers", "scheduled_import_seconds")
    changed = [key for key in restart_keys if previous and previous.get(key) != config.get(key)]
    if pid is not None and changed:
        print(f"osbs-local settings changed ({', '.join(changed)}): restarting pid {pid}")
        _stop_pid(pid)
        pid = None
    if pid is not None and client.healthy():
        print(f"osbs-local already running (pid {pid}) on {client.base}")
    else:
        if pid is not None:
            print(f"osbs-local pid {pid} does not answer; stopping it", file=sys.stderr)
            _stop_pid(pid)
        logs = state_dir / "logs"
        logs.mkdir(exist_ok=True)
        with open(logs / "serve.out", "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "osbs_local.cli", "serve", "--state-dir", str(state_dir)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                cwd=str(state_dir),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not client.healthy():
            if process.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join((logs / "serve.out").read_text(errors="replace").splitlines()[-25:])
                print(f"osbs-local serve did not come up (exit status {process.poll()}); end of {logs / 'serve.out'}:\n{tail}",
                      file=sys.stderr)
                if process.poll() is None:
                    _stop_pid(process.pid)
                return 1
            time.sleep(0.2)
        print(f"osbs-local started (pid {process.pid}) on {client.base}")
    extra = {}
    if args.with_pulp:
        from .services.pulp import PulpService

        extra = PulpService(state_dir, pki, Registry(state_dir, config["registry_port"], pki)).start()
        config["pulp"] = True
        save_config(state_dir, config)
    elif config.get("pulp"):
        from .services.pulp import PulpService

        service = PulpService(state_dir, pki)
        if service.running():
            extra = service.env()
    if not Registry(state_dir, config["registry_port"], pki).answers(timeout=5):
        print(f"osbs-local: the registry on 127.0.0.1:{config['registry_port']} does not answer; see {state_dir / 'registry' / 'registry.log'}",
              file=sys.stderr)
        return 1
    write_kubeconfig(state_dir, config)
    env_path = write_env(state_dir, config, extra)
    print(f"registry: 127.0.0.1:{config['registry_port']}")
    print(f"kubeconfig: {state_dir / 'kubeconfig'}")
    print(f"env: {env_path}  (source it: . {env_path})")
    return 0


def _stop_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def _pki_paths(state_dir: Path) -> dict:
    """The paths ensure_pki() returns, for commands that must not create a PKI."""
    pki_dir = state_dir / "pki"
    return {"ca_cert": pki_dir / "ca.crt", "ca_key": pki_dir / "ca.key", "cert": pki_dir / "server.crt", "key": pki_dir / "server.key"}


def cmd_down(args) -> int:
    state_dir = Path(args.state_dir).resolve()
    with _state_dir_lock(state_dir):
        return _down(state_dir)


def _down(state_dir: Path) -> int:
    config = load_config(state_dir)
    pid = serve_pid(state_dir)
    if pid is not None:
        _stop_pid(pid)
        print(f"osbs-local stopped (pid {pid})")
    else:
        print("osbs-local is not running")
    if config.get("registry_port") and (state_dir / "pki" / "ca.crt").exists():
    
        pki = _pki_paths(state_dir)
        registry = Registry(state_dir, config["registry_port"], pki)
        if registry.running:  # serve stops it; this catches a serve that died without doing so
            registry.stop()
        if config.get("pulp"):
            from .services.pulp import PulpService

            PulpService(state_dir, pki).stop()
            print("pulp stopped")
    return 0


def cmd_status(args) -> int:
    state_dir = Path(args.state_dir).resolve()
    config = load_config(state_dir)
    if not config:
        print(f"no osbs-local state in {state_dir}")
        return 3
    pid = serve_pid(state_dir)
    client = Client(state_dir, config)
    healthy = pid is not None and client.healthy()
    print(f"state dir : {state_dir}")
    print(f"api       : {client.base}  {'running (pid %d)' % pid if healthy else 'not running'}")

    registry = Registry(state_dir, config["registry_port"], _pki_paths(state_dir))
    print(f"registry  : https://{registry.host}  {'running' if registry.answers(timeout=2) else 'not running'}")
    print(f"builder   : {config.get('builder', 'buildah')}{' via ' + config['docker_host'] if config.get('docker_host') else ''}")
    print(f"kubeconfig: {state_dir / 'kubeconfig'}")
    if config.get("pulp"):
        from .services.pulp import PulpService

        service = PulpService(state_dir, _pki_paths(state_dir))
        print(f"pulp      : {service.url}  {'running' if service.running() else 'not running'}")
    if not healthy:
        return 3
    builds = client.request("GET", "/apis/build.openshift.io/v1/builds")["items"]
    per_namespace: dict[str, Counter] = {}
    for build in builds:
        per_namespace.setdefault(build["metadata"]["namespace"], Counter())[build.get("status", {}).get("phase", "New")] += 1
    header = ["NAMESPACE", *PHASES, "TOTAL"]
    rows = [[ns, *(str(counts.get(p, 0)) for p in PHASES), str(sum(counts.values()))]
            for ns, counts in sorted(per_namespace.items())]
    total = Counter()
    for counts in per_namespace.values():
        total.update(counts)
    rows.append(["(all)", *(str(total.get(p, 0)) for p in PHASES), str(sum(total.values()))])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("builds:")
    for row in [header, *rows]:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    return 0


def cmd_serve(args) -> int:
    from .serve import serve  # the engine's modules load in `serve` only: up, down, status and logs start fast

    return serve(Path(args.state_dir).resolve(), verbose=args.verbose, build_workers=args.build_workers)


def cmd_logs(args) -> int:
    state_dir = Path(args.state_dir).resolve()
    client = Client(state_dir)
    query = "?follow=true" if args.follow else ""
    build = args.build
    builds_api = f"/apis/build.openshift.io/v1/namespaces/{args.namespace}"
    try:
        client.request("GET", f"{builds_api}/builds/{build}")
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise
        try:  # a BuildConfig's name means its latest build, as `oc logs bc/NAME` does
            last = client.request("GET", f"{builds_api}/buildconfigs/{build}")["status"].get("lastVersion", 0)
            if last:
                build = f"{build}-{last}"
        except urllib.error.HTTPError:
            pass
    path = f"{builds_api}/builds/{build}/log{query}"
    try:
        response = client.request("GET", path, stream=True, timeout=None if args.follow else 30)
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read()).get("message")
        except ValueError:
            message = str(error)
        print(f"error: {message}", file=sys.stderr)
        return 1
    with response:
        while True:
            chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
            if not chunk:
                break
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="osbs-local", description="The embedded OpenShift build engine of osbs.flow")
    commands = parser.add_subparsers(dest="command", required=True)

    def with_state_dir(sub):
        sub.add_argument("--state-dir", default=os.environ.get("OSBS_LOCAL_STATE_DIR", DEFAULT_STATE_DIR),
                         help="state directory (default: $OSBS_LOCAL_STATE_DIR, else ./.osbs-local)")
        return sub

    up = with_state_dir(commands.add_parser("up", help="start the engine and its registry in the background"))
    up.add_argument("--port", type=int, help="API port (default: a free port chosen once and kept)")
    up.add_argument("--builder", choices=("buildah", "docker"), help="how builds run (default buildah)")
    up.add_argument("--docker-host", help="Docker Engine API URL for --builder docker (e.g. unix:///run/podman.sock)")
    up.add_argument("--with-pulp", action="store_true", help="also start Pulp")
    up.add_argument("--build-workers", type=int, help="builds run at once (default 2; 0 keeps builds New)")
    up.add_argument("--scheduled-import-interval", type=float, metavar="SECONDS",
                    help="how often ImageStream tags with importPolicy.scheduled are imported again "
                         "(default 900, OpenShift's 15 minutes; kept in config.json as scheduled_import_seconds)")
    up.set_defaults(func=cmd_up)
    with_state_dir(commands.add_parser("down", help="stop the engine, its registry (and Pulp)")).set_defaults(func=cmd_down)
    with_state_dir(commands.add_parser("status", help="what runs, where, and builds per phase")).set_defaults(func=cmd_status)
    serve_parser = with_state_dir(commands.add_parser("serve", help="run the engine in the foreground"))
    serve_parser.add_argument("--verbose", "-v", action="store_true", help="also log to stderr")
    serve_parser.add_argument("--build-workers", type=int, help="override build workers for this run")
    serve_parser.set_defaults(func=cmd_serve)
    logs = with_state_dir(commands.add_parser("logs", help="print (or follow) a build's log"))
    logs.add_argument("build", help="a build, or a BuildConfig (its latest build)")
    logs.add_argument("-n", "--namespace", default=NAMESPACE)
    logs.add_argument("-f", "--follow", action="store_true")
    logs.set_defaults(func=cmd_logs)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
