"""A real multi-arch image for the tests: two single-platform images (linux/amd64 and linux/arm64) put in a
manifest list with `buildah manifest create` / `add` and pushed with `buildah manifest push --all`.

Both platforms carry the same busybox-static files (only amd64's is ever run); what differs is the
platform in their configs and a marker file, so every call makes new digests.
"""
from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from osbs_local import registry_client
from osbs_local.executor import base_image
from osbs_local.executor.process import buildah_command, builder_environment

PLATFORMS = ("amd64", "arm64")


def push_multiarch_busybox(image_reference: str, *, storage_dir: Path, auth_file: Path, cert_dir: Path,
                           ca_file: Path, auths: dict, marker: str = "") -> dict:
    """Push a manifest list to image_reference (host/repo:tag); return {"list": digest, "amd64": .., "arm64": ..}.

    The digests are those the registry serves (the list is read back from it).
    """
    import subprocess

    buildah = buildah_command(storage_dir)
    env = builder_environment()

    def run(*args: str) -> str:
        result = subprocess.run([*buildah, *args], capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"buildah {args[0]} {args[1] if len(args) > 1 else ''} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    unique = uuid.uuid4().hex[:10]
    list_name = f"localhost/multiarch-list:{unique}"
    run("manifest", "create", "--", list_name)
    for arch in PLATFORMS:
        container = run("from", "--quiet", "scratch")
        mount_point = Path(run("mount", "--", container))
        try:
            base_image._populate_rootfs(mount_point, base_image.BUSYBOX)
            (mount_point / "etc" / "multiarch-marker").write_text(f"{marker or unique} {arch}\n")
        finally:
            run("umount", "--", container)
        run("config", f"--arch={arch}", "--os=linux", f"--env={base_image.PATH_ENV}", "--cmd=/bin/sh", "--", container)
        local = f"localhost/multiarch-{arch}:{unique}"
        run("commit", "--quiet", "--format=docker", "--rm", "--", container, local)
        run("manifest", "add", "--arch", arch, "--os", "linux", "--", list_name, f"containers-storage:{local}")
    with tempfile.TemporaryDirectory() as tmp:
        digest_file = Path(tmp) / "digest"
        run("manifest", "push", "--all", "--quiet", f"--digestfile={digest_file}", f"--authfile={auth_file}",
            f"--cert-dir={cert_dir}", "--", list_name, f"docker://{image_reference}")
        pushed = digest_file.read_text().strip()
    host, repository, tag = registry_client.split_image_reference(image_reference)
    client = registry_client.RegistryClient(host, auths, str(ca_file))
    manifest, media_type, digest, _body = client.get_manifest(repository, tag)
    assert media_type in registry_client.LIST_TYPES and digest == pushed, (media_type, digest, pushed)
    digests = {"list": digest}
    for entry in manifest["manifests"]:
        digests[entry["platform"]["architecture"]] = entry["digest"]
    assert set(digests) == {"list", *PLATFORMS}, digests
    return digests
