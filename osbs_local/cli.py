"""osbs-local command line: up, down, status, serve, logs."""

from __future__ import annotations

import argparse
import base64
import gc
import json
import logging
import os
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Optional

import yaml

from .registry import pid_alive

DEFAULT_STATE_DIR = ".osbs-local"
NAMESPACE = "osbs"
REGISTRY_SECRET = "registry-dockercfg"
START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
PHASES = ("New", "Pending", "Running", "Complete", "Failed", "Error", "Cancelled")


# -- state directory -----------------------------------------------------------------------------
def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def load_config(state_dir: Path) -> dict:
    path = state_dir / "config.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save_config(state_dir: Path, config: dict) -> None:
    _write_private(state_dir / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")


def ensure_config(state_dir: Path, port: Optional[int] = None, builder: Optional[str] = None,
                  docker_host: Optional[str] = None, build_workers: Optional[int] = None) -> dict:
    """config.json: ports chosen once and kept, the bearer token, the builder settings."""
    from .registry import free_port

    config = load_config(state_dir)
    config.setdefault("token", secrets.token_urlsafe(32))
    if port:
        config["api_port"] = port
    config.setdefault("api_port", free_port())
    if "registry_port" not in config:
        port_choice = free_port()
        while port_choice == config["api_port"]:
            port_choice = free_port()
        config["registry_port"] = port_choice
    if builder:
        config["builder"] = builder
    config.setdefault("builder", "buildah")
    if docker_host is not None:
        config["docker_host"] = docker_host or None
    config.setdefault("docker_host", None)
    if build_workers is not None:
        config["build_workers"] = build_workers
    config.setdefault("build_workers", 2)
    save_config(state_dir, config)
    return config


def serve_pid(state_dir: Path) -> Optional[int]:
    try:
        pid = int((state_dir / "serve.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return pid
    return pid if b"serve" in cmdline else None


# -- talking to the running engine ---------------------------------------------------------------
class Client:
    """A tiny HTTPS client for the engine's own API (the CLI must not need the kubernetes library)."""

    def __init__(self, state_dir: Path, config: Optional[dict] = None):
        config = config or load_config(state_dir)
        self.base = f"https://127.0.0.1:{config['api_port']}"
        self.token = config["token"]
        self.context = ssl.create_default_context(cafile=str(state_dir / "pki" / "ca.crt"))

    def request(self, method: str, path: str, body: Optional[dict] = None, timeout: float = 10.0, stream: bool = False):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        response = urllib.request.urlopen(request, context=self.context, timeout=timeout)
        if stream:
            return response
        with response:
            return json.loads(response.read() or b"{}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/readyz", context=self.context, timeout=2) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError, ssl.SSLError):
            return False


# -- files for clients -------------------------------------------------------------------------------
def write_kubeconfig(state_dir: Path, config: dict) -> Path:
    ca_data = base64.b64encode((state_dir / "pki" / "ca.crt").read_bytes()).decode()
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "osbs-local", "cluster": {
            "server": f"https://127.0.0.1:{config['api_port']}", "certificate-authority-data": ca_data}}],
        "users": [{"name": "osbs-local", "user": {"token": config["token"]}}],
        "contexts": [{"name": "osbs-local", "context": {"cluster": "osbs-local", "user": "osbs-local", "namespace": NAMESPACE}}],
        "current-context": "osbs-local",
        "preferences": {},
    }
    path = state_dir / "kubeconfig"
    _write_private(path, yaml.safe_dump(kubeconfig, sort_keys=False))
    return path


def write_env(state_dir: Path, config: dict, extra: Optional[dict] = None) -> Path:
    values = {
        "K8S_AUTH_KUBECONFIG": str(state_dir / "kubeconfig"),
        "OSBS_LOCAL_STATE_DIR": str(state_dir),
        "OSBS_LOCAL_API": f"https://127.0.0.1:{config['api_port']}",
        "OSBS_LOCAL_REGISTRY": f"127.0.0.1:{config['registry_port']}",
        "REGISTRY_AUTH_FILE": str(state_dir / "auth.json"),
        "OSBS_LOCAL_REGISTRY_CA": str(state_dir / "pki" / "ca.crt"),
        "OSBS_LOCAL_NAMESPACE": NAMESPACE,
        "OSBS_LOCAL_REGISTRY_SECRET": REGISTRY_SECRET,
    }
    values.update(extra or {})
    import shlex

    text = "".join(f"export {key}={shlex.quote(str(value))}\n" for key, value in values.items())
    path = state_dir / "env"
    _write_private(path, text)
    return path


# -- serve ---------------------------------------------------------------------------------------------
def _ca_bundle(state_dir: Path, ca_cert: Path) -> Path:
    """The engine CA plus the system roots: what image imports trust."""
    import certifi

    bundle = state_dir / "pki" / "ca-bundle.pem"
    bundle.write_text(ca_cert.read_text() + "\n" + Path(certifi.where()).read_text())
    return bundle


def _bootstrap(api) -> None:
    """Namespace `osbs` and the dockercfg secret for the integrated registry (kept current)."""
    from .resources import BY_PLURAL

    namespaces, secrets_resource = BY_PLURAL["namespaces"], BY_PLURAL["secrets"]
    if api.store.peek("namespaces", "", NAMESPACE) is None:
        api.create(namespaces, None, {"metadata": {"name": NAMESPACE}})
    dockercfg = base64.b64encode(json.dumps(api.registry_auths).encode()).decode()
    secret = {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockercfg",
        "metadata": {"name": REGISTRY_SECRET, "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/managed-by": "osbs-local"}},
        "data": {".dockercfg": dockercfg},
    }
    current = api.store.get("secrets", NAMESPACE, REGISTRY_SECRET)
    if current is None:
        api.create(secrets_resource, NAMESPACE, secret)
    elif current.get("data") != secret["data"] or current.get("type") != secret["type"]:
        api.delete(secrets_resource, NAMESPACE, REGISTRY_SECRET)
        api.create(secrets_resource, NAMESPACE, secret)


def _setup_logging(state_dir: Path, verbose: bool) -> None:
    log_dir = state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_dir / "serve.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if verbose:
        root.addHandler(logging.StreamHandler())
    root.setLevel(logging.INFO)
    for noisy in ("urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def serve(state_dir: Path, verbose: bool = False, build_workers: Optional[int] = None) -> int:
    from . import pki as pki_module
    from .api import Api
    from .controllers import (BuildController, BuildSettings, ImageStreamController, TriggerController,
                              recover_after_restart)
    from .registry import Registry
    from .server import make_ssl_context, start_http_server
    from .store import Store

    import fcntl

    # state.db holds Secrets and the logs name what was built: whatever serve writes is the owner's alone.
    os.umask(0o077)
    state_dir.mkdir(parents=True, exist_ok=True)
    # One serve per state directory: a second one would mark the first one's running builds as Error.
    lock_file = open(state_dir / "serve.lock", "w")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"osbs-local already serves {state_dir} (pid {serve_pid(state_dir)})", file=sys.stderr)
        return 1
    _setup_logging(state_dir, verbose)
    log = logging.getLogger("osbs_local.serve")
    config = ensure_config(state_dir)
    workers = build_workers if build_workers is not None else int(config.get("build_workers", 2))
    pki = pki_module.ensure_pki(state_dir / "pki")
    registry = Registry(state_dir, config["registry_port"], pki)
    registry.start()
    log.info("registry answers on %s", registry.host)
    store = Store(state_dir / "state.db", int(config.get("watch_cache_size", 10000)))
    # Thousands of stored objects are long-lived: keep them out of the cyclic GC's full passes, and
    # collect less often, so a request does not pay for a 100 ms collection of the whole store.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20000, 50, 50)
    api = Api(store, state_dir, registry.host, str(_ca_bundle(state_dir, Path(pki["ca_cert"]))))
    api.registry_auths = registry.dockercfg()
    recovered = recover_after_restart(api)
    _bootstrap(api)
    settings = BuildSettings(builder=config.get("builder", "buildah"), docker_host=config.get("docker_host"),
                             workers=workers, storage_dir=state_dir / "storage", ca_dir=registry.cert_dir)
    controllers = [BuildController(api, settings), TriggerController(api),
                   ImageStreamController(api, float(config.get("scheduled_import_seconds", 900)))]
    for controller in controllers:
        store.add_listener(controller.on_event)
    for controller in controllers:
        controller.start()
    server = start_http_server(api, "127.0.0.1", int(config["api_port"]), config["token"],
                               make_ssl_context(str(pki["cert"]), str(pki["key"])))
    (state_dir / "serve.pid").write_text(f"{os.getpid()}\n")
    log.info("osbs-local serving on https://127.0.0.1:%s (builder %s, %d build workers, %d builds recovered as Error)",
             config["api_port"], settings.builder, workers, recovered)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        while not stop.wait(2.0):
            if not registry.running:
                # The registry is a process of its own: if it died, bring it back rather than fail every push.
                log.warning("the registry on %s is not running; restarting it", registry.host)
                try:
                    registry.start()
                except Exception:
                    log.exception("restarting the registry failed")
    finally:
        log.info("stopping")
        server.stopping.set()
        store.events.close()
        server.shutdown()
        server.server_close()
        for controller in controllers:
            controller.stop()
        registry.stop()
        store.close()
        try:
            if (state_dir / "serve.pid").read_text().strip() == str(os.getpid()):
                (state_dir / "serve.pid").unlink()
        except OSError:
            pass
        log.info("stopped")
    return 0


# -- commands ------------------------------------------------------------------------------------------
def cmd_up(args) -> int:
    state_dir = Path(args.state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    previous = load_config(state_dir)
    config = ensure_config(state_dir, args.port, args.builder, args.docker_host, args.build_workers)
    from . import pki as pki_module
    from .registry import Registry

    pki = pki_module.ensure_pki(state_dir / "pki")
    client = Client(state_dir, config)
    pid = serve_pid(state_dir)
    restart_keys = ("api_port", "builder", "docker_host", "build_workers")
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
        from .pulp import PulpService

        extra = PulpService(state_dir, pki, Registry(state_dir, config["registry_port"], pki)).start()
        config["pulp"] = True
        save_config(state_dir, config)
    elif config.get("pulp"):
        from .pulp import PulpService

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
    config = load_config(state_dir)
    pid = serve_pid(state_dir)
    if pid is not None:
        _stop_pid(pid)
        print(f"osbs-local stopped (pid {pid})")
    else:
        print("osbs-local is not running")
    if config.get("registry_port") and (state_dir / "pki" / "ca.crt").exists():
        from .registry import Registry

        pki = _pki_paths(state_dir)
        registry = Registry(state_dir, config["registry_port"], pki)
        if registry.running:  # serve stops it; this catches a serve that died without doing so
            registry.stop()
        if config.get("pulp"):
            from .pulp import PulpService

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
    from .registry import Registry

    registry = Registry(state_dir, config["registry_port"], _pki_paths(state_dir))
    print(f"registry  : https://{registry.host}  {'running' if registry.answers(timeout=2) else 'not running'}")
    print(f"builder   : {config.get('builder', 'buildah')}{' via ' + config['docker_host'] if config.get('docker_host') else ''}")
    print(f"kubeconfig: {state_dir / 'kubeconfig'}")
    if config.get("pulp"):
        from .pulp import PulpService

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
