"""The kinds osbs-local serves, one module each; importing this package registers them all.

The order is the order discovery lists them in (core, then build.openshift.io, image.openshift.io and rbac.authorization.k8s.io).
"""

from __future__ import annotations

from ..apiserver import registration
from . import core, rbac, serviceaccount
from .build import build, buildconfig, pod
from .image import (image, imagestream, imagestreamimage, imagestreamimport, imagestreammapping, imagestreamtag,
                    imagetag)

KINDS = (
    core.NAMESPACES, core.CONFIGMAPS, pod.KIND, core.EVENTS, core.SECRETS, serviceaccount.KIND,
    buildconfig.KIND, build.KIND,
    imagestream.KIND, imagestreamimport.KIND, imagestreamtag.KIND, imagestreamimage.KIND, imagestreammapping.KIND,
    imagetag.KIND, image.KIND,
    rbac.CLUSTER_ROLES, rbac.CLUSTER_ROLE_BINDINGS, rbac.ROLE_BINDINGS,
)

for _kind in KINDS:
    registration.register(_kind)
