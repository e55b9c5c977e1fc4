"""The ServiceAccount controllers of OpenShift's controller manager: every namespace keeps its `builder`,
`default` and `deployer` ServiceAccounts, and every ServiceAccount its managed dockercfg secret, listed in
its `secrets` and `imagePullSecrets` (kinds/serviceaccount.py ensure_service_accounts).

A deleted managed ServiceAccount comes back, a deleted managed secret comes back under a new name, and a
ServiceAccount whose lists lost the managed secret gets it again. Listeners only enqueue: they run under
the store lock.
"""

from __future__ import annotations

import logging
import queue
import threading

from ..apiserver.api import Api
from ..apiserver.errors import ApiError
from ..apiserver.watch import Event
from ..kinds.serviceaccount import TOKEN_SERVICE_ACCOUNT_ANNOTATION, ensure_service_accounts

log = logging.getLogger("osbs_local.controllers")


class ServiceAccountController:
    def __init__(self, api: Api):
        self.api = api
        self.pending: "queue.Queue[str]" = queue.Queue()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="serviceaccounts", daemon=True)

    def on_event(self, event: Event) -> None:
        if event.resource == "namespaces" and event.type != "DELETED":
            self.pending.put(event.obj["metadata"]["name"])
        elif event.resource == "serviceaccounts":
            self.pending.put(event.namespace)
        elif event.resource == "secrets" and event.type == "DELETED" and TOKEN_SERVICE_ACCOUNT_ANNOTATION in (
                event.obj["metadata"].get("annotations") or {}):
            self.pending.put(event.namespace)

    def start(self) -> None:
        for namespace, _ in list(self.api.store.scan("namespaces")):
            self._sync(namespace["metadata"]["name"])
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self.pending.put("")
        self.thread.join(timeout)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            namespace = self.pending.get()
            if namespace and not self.stopping.is_set():
                self._sync(namespace)

    def _sync(self, namespace: str) -> None:
        try:
            ensure_service_accounts(self.api, namespace)
        except ApiError as exc:
            log.warning("service accounts of namespace %s not reconciled: %s", namespace, exc.message)
        except Exception:
            log.exception("service accounts of namespace %s not reconciled", namespace)
