import pytest

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.registry_uri import RegistryURI, parse_registry_uri


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("registry.example.com", RegistryURI("https", "registry.example.com", False)),
        ("registry.example.com/v2", RegistryURI("https", "registry.example.com", False)),
        ("registry.example.com/v2/", RegistryURI("https", "registry.example.com", False)),
        ("https://registry.example.com:5000/v2", RegistryURI("https", "registry.example.com:5000", False)),
        ("http://127.0.0.1:5000", RegistryURI("http", "127.0.0.1:5000", True)),
        ("HTTP://127.0.0.1:5000/v2", RegistryURI("http", "127.0.0.1:5000", True)),
        ("[::1]:5000", RegistryURI("https", "[::1]:5000", False)),
        ("  localhost:5000  ", RegistryURI("https", "localhost:5000", False)),
    ],
)
def test_parse_registry_uri(uri, expected):
    assert parse_registry_uri(uri) == expected


@pytest.mark.parametrize(
    "uri, message",
    [
        ("registry.example.com/v1",
         "registry_uri 'registry.example.com/v1' names the v1 registry API, which OSBS no longer supports: "
         "use a v2 registry (drop the /v1 suffix or replace it with /v2)"),
        ("https://r.io/v1/",
         "registry_uri 'https://r.io/v1/' names the v1 registry API, which OSBS no longer supports: "
         "use a v2 registry (drop the /v1 suffix or replace it with /v2)"),
        ("", "registry_uri '' is empty: give the registry as host[:port], for example registry.example.com"),
        (None, "registry_uri None is empty: give the registry as host[:port], for example registry.example.com"),
        ("ftp://r.io", "registry_uri 'ftp://r.io' has the scheme 'ftp': use https:// (the default) or http:// for an insecure registry"),
        ("r.io/v3", "registry_uri 'r.io/v3' has the path '/v3': a registry_uri is host[:port], optionally followed by /v2"),
        ("r.io/ns/repo", "registry_uri 'r.io/ns/repo' has the path '/ns/repo': a registry_uri is host[:port], optionally followed by /v2"),
        ("https:///v2", "registry_uri 'https:///v2' has no valid host[:port] (got '')"),
        ("r.io:99999", "registry_uri 'r.io:99999' has the port 99999, outside 1-65535"),
        ("bad host", "registry_uri 'bad host' has no valid host[:port] (got 'bad host')"),
    ],
)
def test_parse_registry_uri_errors(uri, message):
    with pytest.raises(OsbsFlowError) as exc:
        parse_registry_uri(uri)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "uri",
    ["flowuser:s3cret@registry.example.com", "flowuser:s3cret@registry.example.com:5000/v2",
     "https://flowuser:s3cret@registry.example.com/v1", "http://flowuser:s3cret@r.io/ns/repo", "s3cret@r.io"],
)
def test_credentials_in_a_registry_uri_are_refused_without_showing_them(uri):
    with pytest.raises(OsbsFlowError) as exc:
        parse_registry_uri(uri)
    message = str(exc.value)
    assert "s3cret" not in message and "flowuser" not in message, message
    assert "***@" in message, message
