"""`osbs-local serve`: the engine's process, assembled: storage, the generic API with every kind, the
registry, the controllers and the HTTPS server, until SIGTERM."""

from __future__ import annotations

import base64
import fcntl
import gc
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Optional

import certifi

from .apiserver.api import Api
from .apiserver.http import make_ssl_context, start_http_server
from .apiserver.storage import Store
from .apiserver.watch import DEFAULT_WINDOW_SECONDS
from .controllers.build_status import build_process_groups_dir, recover_after_restart
from .controllers.builds import BuildController, BuildSettings
from .controllers.imports import ImageStreamController
from .controllers.serviceaccounts import ServiceAccountController
from .controllers.triggers import TriggerController
from .kinds import rbac
from .kinds.core import NAMESPACES, SECRETS  # importing osbs_local.kinds registers every kind the API serves
from .executor import git_source
from .executor.process import record_process_groups_in
from .services import pki as pki_module
from .services.registry import Registry
from .state import NAMESPACE, REGISTRY_SECRET, ensure_config, serve_pid


def _ca_bundle(state_dir: Path, ca_cert: Path) -> Path:
    """The engine CA plus the system roots: what image imports trust."""
    bundle = state_dir / "pki" / "ca-bundle.pem"
    bundle.write_text(ca_cert.read_text() + "\n" + Path(certifi.where()).read_text())
    return bundle


def _bootstrap(api) -> None:
    """The bootstrap RBAC policy, namespace `osbs` and the dockercfg secret for the integrated registry (kept current)."""
    namespaces, secrets_resource = NAMESPACES.resource, SECRETS.resource
    rbac.bootstrap(api)
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
    store = Store(state_dir / "state.db", int(config.get("watch_cache_size", 10000)),
                  float(config.get("watch_window_seconds", DEFAULT_WINDOW_SECONDS)))
    # Thousands of stored objects are long-lived: keep them out of the cyclic GC's full passes, and
    # collect less often, so a request does not pay for a 100 ms collection of the whole store.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20000, 50, 50)
    api = Api(store, state_dir, registry.host, str(_ca_bundle(state_dir, Path(pki["ca_cert"]))))
    api.registry_auths = registry.dockercfg()
    recovered = recover_after_restart(api)
    record_process_groups_in(build_process_groups_dir(api))
    _bootstrap(api)
    settings = BuildSettings(builder=config.get("builder", "buildah"), docker_host=config.get("docker_host"),
                             workers=workers, storage_dir=state_dir / "storage", ca_dir=registry.cert_dir,
                             git_timeout=float(config.get("git_timeout_seconds", git_source.DEFAULT_GIT_TIMEOUT)),
                             record_image_digest=not config.get("test_build_without_image_digest", False))
    # The ServiceAccount controller starts first: its start gives every namespace its ServiceAccounts before a build runs.
    controllers = [ServiceAccountController(api), BuildController(api, settings), TriggerController(api),
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
