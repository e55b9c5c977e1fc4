# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OSBS repo configuration file, `.osbs-repo-config`."""

from __future__ import annotations

import configparser

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError

DEFAULT_REPO_CONFIG_FILE = ".osbs-repo-config"
AUTOREBUILD_SECTION = "autorebuild"
ENABLED_KEY = "enabled"

_BOOLEANS = {"1": True, "true": True, "0": False, "false": False}


def parse_repo_config(text, filename=DEFAULT_REPO_CONFIG_FILE):
    """Read `[autorebuild] enabled` from the file's text (None when the file is absent).

    Autorebuilds are enabled when the file, the section or the key is absent.
    Values are 0, false, 1 or true in any case; anything else, or text that is
    not INI, is an OsbsFlowError naming the file, the key and the value.
    """
    if text is None:
        return {"autorebuild_enabled": True}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=filename)
    except configparser.Error as exc:
        raise OsbsFlowError(
            "%s is not a valid INI file (%s): fix it so that it reads, for example, "
            "'[autorebuild]' then 'enabled = true'" % (filename, " ".join(str(exc).split()))
        )
    if not parser.has_option(AUTOREBUILD_SECTION, ENABLED_KEY):
        return {"autorebuild_enabled": True}
    raw = parser.get(AUTOREBUILD_SECTION, ENABLED_KEY)
    value = _BOOLEANS.get(raw.strip().lower())
    if value is None:
        raise OsbsFlowError(
            "%s: [%s] %s has the value %r, which is not one of 0, false, 1, true (any case): "
            "set it to one of those" % (filename, AUTOREBUILD_SECTION, ENABLED_KEY, raw)
        )
    return {"autorebuild_enabled": value}
