# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error type the pure core raises; modules turn it into fail_json(msg=...)."""

from __future__ import annotations


class OsbsFlowError(ValueError):
    """Bad input: the message names the object, the value and what to do."""
