"""Plain http is allowed only to these hosts, so the rule must not be fooled by look-alike names."""

import pytest

from integration.net import is_loopback


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.8.9.10", "::1"])
def test_loopback_hosts(host):
    assert is_loopback(host)


OTHERS = [None, "", "localhost.example.org", "127.0.0.1.nip.io", "10.0.0.1", "0.0.0.0", "::", "example.org"]


@pytest.mark.parametrize("host", OTHERS)
def test_other_hosts(host):
    assert not is_loopback(host)
