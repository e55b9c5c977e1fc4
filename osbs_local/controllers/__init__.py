"""The controllers of the serve process (builds, triggers, imports), as openshift-controller-manager runs them.

Each controller has one thread fed by store events; builds run in worker threads with the executor.
"""
