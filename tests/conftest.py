"""What the suites share: the collection importable as `ansible_collections.osbs.flow`, and one osbs-local.

`make setup` (its `collection` step) links the checkout to build/collections/ansible_collections/osbs/flow,
the path the tests give Python and Ansible (ANSIBLE_COLLECTIONS_PATH). Tests only read that link: a test
run writes nothing into the checkout, and without the link it stops and says to run `make setup`.
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, "build", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "osbs", "flow")

if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)


import pytest  # noqa: E402

from testlib import start_engine, stop_engine  # noqa: E402

SCHEDULED_IMPORT_SECONDS = 4


def pytest_configure(config):
    # Another checkout's link would test that checkout's collection with this one's tests.
    if os.path.realpath(LINK) != os.path.realpath(REPO):
        raise pytest.UsageError(
            "%s does not link to this checkout (%s): run `make setup` (or `make collection`) first"
            % (LINK, REPO)
        )


@pytest.fixture(scope="session")
def osbs_engine(tmp_path_factory):
    """One osbs-local (API server and its TLS+htpasswd registry) for the whole run, stopped after."""
    # Tags with importPolicy.scheduled are imported again every few seconds rather than OpenShift's 15 minutes,
    # so the tests of scheduled imports see one without waiting (tags without it are never imported on a schedule).
    engine = start_engine(tmp_path_factory.mktemp("osbs-local"), "--scheduled-import-interval", str(SCHEDULED_IMPORT_SECONDS))
    yield engine
    stop_engine(engine)


@pytest.fixture(scope="session")
def busybox_base_image(osbs_engine, tmp_path_factory):
    """A base image made from busybox-static, pushed to the engine's registry: (pull spec by tag, its digest)."""
    from osbs_local.executor.base_image import build_busybox_base

    image = "%s/osbs/busybox:latest" % osbs_engine.registry
    digest = build_busybox_base(
        image,
        storage_dir=tmp_path_factory.mktemp("base-storage"),
        auth_file=osbs_engine.env["REGISTRY_AUTH_FILE"],
        cert_dir=osbs_engine.state_dir / "certs.d" / osbs_engine.registry,
    )
    return image, digest


@pytest.fixture(scope="session")
def busybox_base(busybox_base_image):
    """The busybox-static base image's pull spec by tag."""
    return busybox_base_image[0]
