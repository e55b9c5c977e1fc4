"""A vendor's base image: pushed to the registry by the test as a vendor publishes an errata, not built by the flow."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from osbs_local.executor.process import buildah_command, builder_environment


class Vendor:
    """Publishes `image` (host/repository:tag in the engine's registry): each publish() is a new image of the tag."""

    def __init__(self, engine, busybox_base, image, storage_dir):
        self.engine = engine
        self.busybox_base = busybox_base
        self.image = image
        self.buildah = buildah_command(Path(storage_dir))
        self.auth = ["--authfile", str(self.engine.env["REGISTRY_AUTH_FILE"]),
                     "--cert-dir", str(self.engine.state_dir / "certs.d" / self.engine.registry)]

    def _run(self, *args):
        result = subprocess.run([*self.buildah, *args], capture_output=True, text=True, env=builder_environment(), timeout=300)
        assert result.returncode == 0, "buildah %s: %s" % (args[0], result.stderr)
        return result.stdout.strip()

    def publish(self, errata):
        """A new image of the tag (the busybox base with an errata label); its digest as the registry stores it."""
        container = self._run("from", "--quiet", *self.auth, "--", "docker://" + self.busybox_base)
        try:
            # The errata in the environment too: a dependent's RUN can see it (a recipe that breaks on one errata).
            self._run("config", "--label", "com.example.errata=%s" % errata, "--env", "VENDOR_ERRATA=%s" % errata, "--", container)
            self._run("commit", "--quiet", "--format=docker", "--", container, "vendor-image")
        finally:
            subprocess.run([*self.buildah, "rm", "--", container], capture_output=True, env=builder_environment(), timeout=60)
        with tempfile.TemporaryDirectory() as tmp:
            digest_file = Path(tmp) / "digest"
            self._run("push", "--quiet", "--digestfile", str(digest_file), *self.auth, "--", "vendor-image", "docker://" + self.image)
            return digest_file.read_text().strip()


def imagestream(graph, name):
    return json.loads(graph.kubectl("get", "imagestream", name, "-o", "json").stdout)
