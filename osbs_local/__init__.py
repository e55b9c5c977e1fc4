"""osbs-local: an embedded single-machine OpenShift build engine (layout: docs/engine.md)."""
