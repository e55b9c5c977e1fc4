"""Building and pushing through a Docker Engine API (the `docker` SDK; podman's compatible service works)."""

from __future__ import annotations

import socket
import threading

from .. import registry_client
from .process import BuildCancelled, BuildFailure
from .tool_output import build_failure, registry_problem

DOCKER_API_TIMEOUT = 3600  # seconds a build step may stay silent before the Docker API client gives up


class DockerApiRun:
    def __init__(self, *, docker_host, context, dockerfile, target, push, base_images, build_args, no_cache, skip_layers,
                 workdir, push_auths, pull_auths, ca_dir, log, cancel):
        import docker  # imported here: the buildah path must not need it

        if not docker_host:
            raise BuildFailure("GenericBuildFailed", "the docker builder needs a docker_host (e.g. unix:///run/podman/podman.sock)")
        self.docker_host = docker_host
        try:
            self.api = docker.APIClient(base_url=docker_host, version="auto", timeout=DOCKER_API_TIMEOUT)
        except docker.errors.DockerException as exc:
            raise BuildFailure("GenericBuildFailed", f"cannot reach the Docker Engine API at {docker_host}: {exc}") from exc
        self.context, self.dockerfile, self.target, self.push_wanted = context, dockerfile, target, push
        self.base_images, self.build_args, self.no_cache, self.skip_layers = base_images, build_args, no_cache, skip_layers
        self.push_auths, self.pull_auths, self.ca_dir = push_auths, pull_auths, ca_dir
        self.log, self.cancel = log, cancel
        # APIClient is a requests.Session: a response hook hands us each streaming response, so a
        # cancel can cut its connection.
        self._responses: list = []
        self.api.hooks["response"].append(self._remember_response)

    def _remember_response(self, response, *args, **kwargs):
        self._responses.append(response)
        return response

    def _disconnect(self) -> None:
        """Shut the streaming connections down: a blocked read returns at once, and the daemon sees
        the client go away (Docker and podman then stop the build or push)."""
        for response in list(self._responses):
            connection = getattr(response.raw, "connection", None) or getattr(response.raw, "_connection", None)
            sock = getattr(connection, "sock", None)
            try:
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
                response.close()
            except OSError:
                pass

    def _stream(self, items, on_item) -> None:
        """Feed decoded stream items to on_item; on cancel the connection is cut, even in a silent step."""
        done = threading.Event()

        def close_on_cancel():
            while not done.is_set():
                if self.cancel.wait(0.2):
                    self._disconnect()
                    return

        watcher = threading.Thread(target=close_on_cancel, daemon=True)
        watcher.start()
        try:
            for item in items:
                if self.cancel.is_set():
                    raise BuildCancelled()
                on_item(item)
        except BuildCancelled:
            raise
        except BuildFailure:
            raise
        except Exception:
            if self.cancel.is_set():
                raise BuildCancelled()
            raise
        finally:
            done.set()
            watcher.join()
        if self.cancel.is_set():
            raise BuildCancelled()

    def _registry_transfer(self, start, host: str, reason: str, what: str) -> list:
        """Run a pull or a push (start() opens its stream), logging its progress; the items it streamed.

        The daemon reports a failure either as an API error or as an item with an `error`; the last one names it.
        """
        import docker

        items: list[dict] = []
        errors: list[str] = []

        def on_item(item):
            items.append(item)
            if item.get("error"):
                errors.append(item["error"].strip())
            elif item.get("status") and not item.get("progressDetail"):
                self.log(f"{item.get('id', '')} {item['status']}".strip())

        try:
            self._stream(start(), on_item)
        except docker.errors.APIError as exc:
            errors.append(exc.explanation or str(exc))
        if errors:
            raise BuildFailure(reason, f"{what}: {registry_problem(errors[-1], host)} ({errors[-1]})")
        return items

    @staticmethod
    def _auth_config(auths: dict | None, host: str) -> dict | None:
        creds = registry_client.credentials_for(auths, host)
        return {"username": creds[0], "password": creds[1], "serveraddress": host} if creds else None

    def run(self) -> str | None:
        import docker

        for image in self.base_images:
            host = registry_client.split_image_reference(image)[0]
            self.log(f"Pulling image {image} ...")
            # The SDK splits "name:tag" and "name@digest" itself.
            self._registry_transfer(
                lambda: self.api.pull(image, auth_config=self._auth_config(self.pull_auths, host), stream=True, decode=True),
                host, "PullBuilderImageFailed", f"cannot pull base image {image}")

        lines: list[str] = []
        errors: list[str] = []

        def on_build(item):
            if item.get("error"):
                errors.append(item["error"].strip())
                lines.append(item["error"].strip())
                self.log(item["error"].strip())
            for line in (item.get("stream") or "").splitlines():
                if line.strip():
                    lines.append(line)
                    self.log(line)

        if self.skip_layers:
            # Docker's squash needs an experimental daemon and podman's squashes the base too: no Docker API
            # equivalent of buildah without --layers, so the policy is said and not applied.
            self.log("imageOptimizationPolicy asks for one layer, which the docker builder cannot do: "
                     "the image keeps a layer per step (the buildah builder applies it)")
        try:
            self._stream(self.api.build(
                path=str(self.context), dockerfile=str(self.dockerfile.relative_to(self.context)), tag=self.target,
                buildargs=dict(self.build_args), nocache=self.no_cache, pull=False, rm=True, forcerm=True,
                decode=True,
            ), on_build)
        except docker.errors.APIError as exc:
            errors.append(exc.explanation or str(exc))
            lines.append(errors[-1])
        if errors:
            raise build_failure(lines)
        if not self.push_wanted:
            return None

        host, repository, tag = registry_client.split_image_reference(self.target)
        name = self.target.rsplit(":", 1)[0]
        self.log(f"Pushing image {self.target} ...")
        digests = [(item.get("aux") or {}).get("Digest") for item in self._registry_transfer(
            lambda: self.api.push(name, tag=tag, auth_config=self._auth_config(self.push_auths, host), stream=True, decode=True),
            host, "PushImageToRegistryFailed", f"cannot push {self.target}")]
        digests = [digest for digest in digests if digest]
        digest = digests[-1] if digests else self._digest_from_registry(host, repository, tag)
        self.log(f"Pushed image {self.target} with digest {digest}")
        return digest

    def _digest_from_registry(self, host: str, repository: str, tag: str) -> str:
        ca_file = self.ca_dir / host / "ca.crt" if self.ca_dir else None
        client = registry_client.RegistryClient(host, self.push_auths, str(ca_file) if ca_file and ca_file.exists() else None)
        try:
            return client.inspect(repository, tag)["digest"]
        except registry_client.RegistryError as exc:
            raise BuildFailure("PushImageToRegistryFailed",
                               f"pushed {self.target} but cannot read its digest back: {exc.message}") from exc
