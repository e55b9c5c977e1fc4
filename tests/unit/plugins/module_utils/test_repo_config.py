import configparser

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.repo_config import parse_repo_config


@pytest.mark.parametrize(
    "text, enabled",
    [
        (None, True),  # no file
        ("", True),
        ("[other]\nkey = 1\n", True),  # no section
        ("[autorebuild]\n", True),  # no key
        ("[autorebuild]\nenabled=1\n", True),
        ("[autorebuild]\nenabled = true\n", True),
        ("[autorebuild]\nenabled = TRUE\n", True),
        ("[autorebuild]\nenabled = True  \n", True),
        ("[autorebuild]\nenabled=0\n", False),
        ("[autorebuild]\nenabled = false\n", False),
        ("[autorebuild]\nenabled = FaLsE\n", False),
        ("# comment\n[autorebuild]\n; another\nenabled: 0\n", False),
        # Every value configparser's getboolean accepts, as osbs-client and atomic-reactor read the file.
        ("[autorebuild]\nenabled = yes\n", True),
        ("[autorebuild]\nenabled = YES\n", True),
        ("[autorebuild]\nenabled = on\n", True),
        ("[autorebuild]\nEnabled = On\n", True),
        ("[autorebuild]\nenabled = no\n", False),
        ("[autorebuild]\nenabled = No\n", False),
        ("[autorebuild]\nenabled = off\n", False),
        ("[autorebuild]\nenabled = OFF\n", False),
    ],
)
def test_parse_repo_config(text, enabled):
    assert parse_repo_config(text) == {"autorebuild_enabled": enabled}


@pytest.mark.parametrize(
    "text, message",
    [
        ("[autorebuild]\nenabled = maybe\n",
         ".osbs-repo-config: [autorebuild] enabled has the value 'maybe', which is not a boolean "
         "(1, yes, true, on or 0, no, false, off, in any case): set it to one of those"),
        ("[autorebuild]\nenabled =\n",
         ".osbs-repo-config: [autorebuild] enabled has the value '', which is not a boolean "
         "(1, yes, true, on or 0, no, false, off, in any case): set it to one of those"),
        ("enabled = 1\n",
         ".osbs-repo-config is not a valid INI file (File contains no section headers. file: '.osbs-repo-config', line: 1 "
         "'enabled = 1\\n'): fix it so that it reads, for example, '[autorebuild]' then 'enabled = true'"),
        ("[autorebuild]\nenabled = 1\n[autorebuild]\n",
         ".osbs-repo-config is not a valid INI file (While reading from '.osbs-repo-config' [line 3]: section 'autorebuild' "
         "already exists): fix it so that it reads, for example, '[autorebuild]' then 'enabled = true'"),
    ],
)
def test_parse_repo_config_errors(text, message):
    with pytest.raises(OsbsFlowError) as exc:
        parse_repo_config(text)
    assert str(exc.value) == message


def test_error_names_the_given_file():
    with pytest.raises(OsbsFlowError, match=r"^app/.osbs-repo-config: \[autorebuild\] enabled has the value '2'"):
        parse_repo_config("[autorebuild]\nenabled=2\n", filename="app/.osbs-repo-config")


@pytest.mark.parametrize("text", [
    "[autorebuild]\nenabled =\n  no\n",  # a continuation line: the value is "\nno", which getboolean refuses
    "[autorebuild]\nenabled = yes\n",
    "[autorebuild]\nenabled =\ttrue \t\n",
    "[autorebuild]\nEnabled: OFF\n",
    "[DEFAULT]\nenabled = no\n[autorebuild]\n",
    "[autorebuild]\nenabled = no\u00a0\n",
    "[autorebuild]\nenabled = false ; off for now\n",
])
def test_every_value_reads_as_configparser_getboolean_reads_it(text):
    parser = configparser.ConfigParser()
    parser.read_string(text)
    try:
        expected = parser.getboolean("autorebuild", "enabled")
    except ValueError:
        with pytest.raises(OsbsFlowError):
            parse_repo_config(text)
    else:
        assert parse_repo_config(text) == {"autorebuild_enabled": expected}
