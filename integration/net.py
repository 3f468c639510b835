"""Network address rules shared by every outbound path: plain http is allowed only to loopback hosts."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str | None) -> bool:
    """True for `localhost` and loopback IP literals; never resolves a name (no DNS at check time)."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
