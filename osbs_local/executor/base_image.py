"""A base image made from nothing but busybox-static, for a machine that cannot pull images.

build_busybox_base("HOST/base/busybox:latest", storage_dir=..., auth_file=..., cert_dir=...)
builds it with buildah (`from scratch`, busybox and its applets as symlinks in /bin, a root user)
and pushes it, returning the manifest digest the registry stores.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from .process import buildah_command, builder_environment

BUSYBOX = "/bin/busybox"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _busybox_applets(busybox: str) -> list[str]:
    out = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True, env=builder_environment()).stdout
    return sorted(name for name in out.split() if name and name != "busybox")


def _populate_rootfs(root: Path, busybox: str) -> None:
    for directory in ("bin", "etc", "tmp", "root", "var/tmp", "proc", "sys", "dev"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "var/tmp").chmod(0o1777)
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in _busybox_applets(busybox):
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    (root / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")


def build_busybox_base(
    image_reference: str,
    *,
    storage_dir: Path,
    auth_file: Path | None = None,
    cert_dir: Path | None = None,
    tls_verify: bool = True,
    busybox: str = BUSYBOX,
    log: Callable[[str], None] | None = None,
) -> str:
    """Build the busybox image, push it to image_reference and return its manifest digest.

    cert_dir is the directory holding the registry's ca.crt (certs.d/HOST), as buildah wants it.
    """
    buildah = buildah_command(storage_dir)
    log = log or (lambda line: None)

    def run(*args: str) -> str:
        result = subprocess.run([*buildah, *args], capture_output=True, text=True, env=builder_environment())
        if result.returncode != 0:
            raise RuntimeError(f"buildah {args[0]} failed for {image_reference}: {result.stderr.strip()}")
        return result.stdout.strip()

    container = run("from", "--quiet", "scratch")
    try:
        mount_point = Path(run("mount", "--", container))
        try:
            _populate_rootfs(mount_point, busybox)
        finally:
            run("umount", "--", container)
        run("config", "--arch=amd64", "--os=linux", f"--env={PATH_ENV}", "--cmd=/bin/sh",
            "--label=io.osbs-local.base=busybox", "--created-by=osbs-local baseimage (busybox-static)",
            "--", container)
        run("commit", "--quiet", "--format=docker", "--rm", "--", container, image_reference)
        container = None
    finally:
        if container is not None:
            subprocess.run([*buildah, "rm", "--", container], capture_output=True, env=builder_environment())
    log(f"Built {image_reference} from scratch with {busybox}")
    with tempfile.TemporaryDirectory() as tmp:
        digest_file = Path(tmp) / "digest"
        push = ["push", "--quiet", f"--digestfile={digest_file}"]
        if auth_file:
            push.append(f"--authfile={auth_file}")
        if cert_dir:
            push.append(f"--cert-dir={cert_dir}")
        if not tls_verify:
            push.append("--tls-verify=false")
        run(*push, "--", image_reference, f"docker://{image_reference}")
        digest = digest_file.read_text().strip()
    log(f"Pushed {image_reference} digest {digest}")
    return digest


def main(argv: list[str] | None = None) -> int:
    """`python -m osbs_local.executor.base_image [REPOSITORY:TAG]`: push the busybox base image to the engine's registry.

    Defaults come from the engine's env file variables (source DIR/env first): OSBS_LOCAL_REGISTRY and
    REGISTRY_AUTH_FILE; the CA is taken from DIR/certs.d/HOST next to the auth file.
    """
    import argparse
    import os
    import sys

    parser = argparse.ArgumentParser(prog="python -m osbs_local.executor.base_image", description=main.__doc__)
    parser.add_argument("repository", nargs="?", default="osbs/busybox:latest",
                        help="repository:tag inside the registry (default osbs/busybox:latest)")
    parser.add_argument("--registry", default=os.environ.get("OSBS_LOCAL_REGISTRY"), help="HOST:PORT")
    parser.add_argument("--auth-file", default=os.environ.get("REGISTRY_AUTH_FILE"))
    parser.add_argument("--cert-dir", help="directory with the registry's ca.crt (default: certs.d/HOST beside the auth file)")
    parser.add_argument("--storage-dir", help="containers storage for buildah (default: storage/ beside the auth file)")
    args = parser.parse_args(argv)
    if not args.registry or not args.auth_file:
        parser.error("give --registry and --auth-file, or source the engine's env file (osbs-local up writes it)")
    state_dir = Path(args.auth_file).resolve().parent
    digest = build_busybox_base(
        f"{args.registry}/{args.repository}",
        storage_dir=Path(args.storage_dir) if args.storage_dir else state_dir / "storage",
        auth_file=Path(args.auth_file),
        cert_dir=Path(args.cert_dir) if args.cert_dir else state_dir / "certs.d" / args.registry,
        log=lambda line: print(line, file=sys.stderr),
    )
    print(f"{args.registry}/{args.repository.rsplit(':', 1)[0]}@{digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
