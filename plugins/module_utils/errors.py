# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one failure type of osbs.flow: module_utils raise it, only a module base turns it into fail_json."""

from __future__ import annotations


class OsbsFlowError(ValueError):
    """A failure meant for the person running the playbook, with what the module returns alongside.

    The message names the object, the value and what to do; `result` holds the
    other keys of the failed module's result (`changed` for a run that already
    wrote something, a build's summary, the API's Status...). OsbsOpenShiftModule
    and PulpModule pass both to fail_json.
    """

    def __init__(self, msg, **result):
        # `msg` as fail_json names it: a result key such as a build's `message` must not collide with it.
        super().__init__(msg)
        self.result = result
