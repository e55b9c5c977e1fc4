# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OSBS repo configuration file, `.osbs-repo-config`."""

from __future__ import annotations

import configparser

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError

DEFAULT_REPO_CONFIG_FILE = ".osbs-repo-config"
AUTOREBUILD_SECTION = "autorebuild"
ENABLED_KEY = "enabled"

# configparser's own table (1/yes/true/on, 0/no/false/off), which osbs-client and atomic-reactor read the file with.
_BOOLEANS = configparser.ConfigParser.BOOLEAN_STATES


def parse_repo_config(text, filename=DEFAULT_REPO_CONFIG_FILE):
    """Read `[autorebuild] enabled` from the file's text (None when the file is absent).

    Autorebuilds are enabled when the file, the section or the key is absent.
    Values are what configparser's getboolean accepts (1, yes, true, on and 0,
    no, false, off, in any case), as osbs-client and atomic-reactor read the
    file; anything else, or text that is not INI, is an OsbsFlowError naming
    the file, the key and the value.
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
    value = _BOOLEANS.get(raw.lower())  # as getboolean: a continuation line ("enabled =\n  no") is no boolean
    if value is None:
        raise OsbsFlowError(
            "%s: [%s] %s has the value %r, which is not a boolean (1, yes, true, on or 0, no, false, off, "
            "in any case): set it to one of those" % (filename, AUTOREBUILD_SECTION, ENABLED_KEY, raw)
        )
    return {"autorebuild_enabled": value}
