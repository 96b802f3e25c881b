# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The daemon's health endpoint: one plain HTTP GET under a total deadline.

Stdlib only, Python 3.8+. No proxy, no redirect; the head and the body are bounded.

Public API:

* :func:`check_health` - ``GET http://<host>:<port><path>`` within ``timeout`` seconds in total
* :func:`health_host` - the address of the checked process's own socket to send it to
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import ipaddress
import json
import re
import socket
import time

from ansible_collections.ringrift.cluster.plugins.module_utils import p2p_sockets

HEALTH_BODY_LIMIT = 65536
HEALTH_HEAD_LIMIT = 16384


# --------------------------------------------------------------------------- health

class _HealthError(Exception):
    """The health answer is unusable (too large, not HTTP); the text says why."""


def _remaining(deadline, clock):
    """Seconds left before ``deadline``; ``socket.timeout`` once it has passed."""
    left = deadline - clock()
    if left <= 0:
        raise socket.timeout("deadline passed")
    return left


def _parse_head(head):
    """Status code and lower-cased headers of an HTTP response head (bytes up to the blank line)."""
    lines = head.decode("iso-8859-1").split("\r\n")
    match = re.match(r"HTTP/\d(?:\.\d)? (\d{3})(?: |$)", lines[0])
    if not match:
        raise _HealthError("not an HTTP answer: %r" % lines[0][:80])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(match.group(1)), headers


def _dechunk(data):
    """Body of a complete ``Transfer-Encoding: chunked`` payload, ``None`` while incomplete."""
    body = bytearray()
    pos = 0
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size_text = data[pos:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _HealthError("bad chunk size %r" % bytes(size_text[:20]))
        if size == 0:
            return bytes(body)
        start = line_end + 2
        if len(data) < start + size + 2:
            return None
        body += data[start:start + size]
        pos = start + size + 2


def _http_get(host, port, path, deadline, clock):
    """``(status, body bytes)`` of ``GET path``; every step (connect, send, each read) shares ``deadline``.

    A per-read timeout alone lets a server that sends one byte at a time hold the
    caller for as long as it likes; here the whole exchange ends at ``deadline``, and
    the head and body are bounded (``HEALTH_HEAD_LIMIT``, ``HEALTH_BODY_LIMIT``).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(_remaining(deadline, clock))
        sock.connect((host, int(port)))
        host_header = "[%s]:%s" % (host, port) if ":" in host else "%s:%s" % (host, port)
        request = ("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n"
                   "User-Agent: ringrift.cluster.p2p_listener\r\nConnection: close\r\n\r\n" % (path, host_header))
        sock.settimeout(_remaining(deadline, clock))
        sock.sendall(request.encode("ascii"))
        data = bytearray()
        head_end = -1
        status = headers = None
        while True:
            sock.settimeout(_remaining(deadline, clock))
            chunk = sock.recv(16384)
            eof = not chunk
            data += chunk
            if head_end < 0:
                head_end = data.find(b"\r\n\r\n")
                if head_end < 0:
                    if len(data) > HEALTH_HEAD_LIMIT:
                        raise _HealthError("response head longer than %d bytes" % HEALTH_HEAD_LIMIT)
                    if eof:
                        raise _HealthError("connection closed before the response head ended")
                    continue
                status, headers = _parse_head(bytes(data[:head_end]))
            raw = data[head_end + 4:]
            chunked = "chunked" in headers.get("transfer-encoding", "").lower()
            if chunked:
                body = _dechunk(raw)
                if body is not None:
                    return status, body
            elif headers.get("content-length", "").isdigit():
                length = int(headers["content-length"])
                if length > HEALTH_BODY_LIMIT:
                    raise _HealthError("body of %d bytes is over the %d byte limit" % (length, HEALTH_BODY_LIMIT))
                if len(raw) >= length:
                    return status, bytes(raw[:length])
            elif eof:
                return status, bytes(raw)
            if len(raw) > HEALTH_BODY_LIMIT + (HEALTH_HEAD_LIMIT if chunked else 0):
                raise _HealthError("body over the %d byte limit" % HEALTH_BODY_LIMIT)
            if eof:
                raise _HealthError("connection closed before the body ended")
    finally:
        sock.close()


def check_health(host, port, path="/health", timeout=5.0, expected_node_id=None, clock=time.monotonic):
    """``GET http://<host>:<port><path>`` without proxies, within ``timeout`` seconds in total.

    ``timeout`` bounds the whole request (connect, send and every read together), not each
    read; the response head may hold ``HEALTH_HEAD_LIMIT`` bytes and the body ``HEALTH_BODY_LIMIT``.

    :returns: dict ``{url, status, ok, body, json, healthy, node_id, error, elapsed}``:
        ``ok`` is true for a 2xx answer whose JSON ``node_id`` equals ``expected_node_id``
        (when given); ``healthy`` is the JSON ``healthy`` field (``None`` when absent);
        ``error`` says why ``ok`` is false (``timed out``, ``connection refused``, ``HTTP 500``,
        ``node_id mismatch``, ``body ... over the ... byte limit``...); ``elapsed`` is seconds.
    """
    if not path.startswith("/"):
        path = "/" + path
    url_host = "[%s]" % host if ":" in host else host
    result = {
        "url": "http://%s:%s%s" % (url_host, port, path),
        "status": None,
        "ok": False,
        "body": None,
        "json": None,
        "healthy": None,
        "node_id": None,
        "error": None,
        "elapsed": None,
    }
    started = clock()
    try:
        status, body = _http_get(host, port, path, started + float(timeout), clock)
        result["status"] = status
        result["body"] = body.decode("utf-8", "replace")
    except socket.timeout:
        result["error"] = "timed out after %ss (whole request)" % timeout
    except _HealthError as exc:
        result["error"] = str(exc)
    except (IOError, OSError) as exc:
        if getattr(exc, "errno", None) == errno.ECONNREFUSED:
            result["error"] = "connection refused"
        else:
            result["error"] = "%s: %s" % (type(exc).__name__, exc)
    finally:
        result["elapsed"] = round(clock() - started, 3)
    if result["body"] is not None:
        try:
            data = json.loads(result["body"])
        except ValueError:
            data = None
        result["json"] = data
        if isinstance(data, dict):
            if isinstance(data.get("healthy"), bool):
                result["healthy"] = data["healthy"]
            if data.get("node_id") is not None:
                result["node_id"] = str(data["node_id"])
    if result["error"] is None:
        if not 200 <= result["status"] < 300:
            result["error"] = "HTTP %s" % result["status"]
        elif expected_node_id is not None and result["node_id"] != str(expected_node_id):
            if result["node_id"] is None:
                result["error"] = "node_id mismatch: expected %s, health body has none" % expected_node_id
            else:
                result["error"] = "node_id mismatch: expected %s, got %s" % (expected_node_id, result["node_id"])
        else:
            result["ok"] = True
    return result


def health_host(listeners, bind_address=None):
    """Address to send the health request to.

    :arg listeners: the sockets of the process being checked, only its own: probing an
        address that another process holds would ask that process.
    :arg bind_address: when it names one specific address, that address.

    Otherwise: loopback of the family for a wildcard socket (``127.0.0.1`` for ``0.0.0.0``,
    ``::1`` for ``::``), else a loopback address the process is bound to, else the first
    specific address it is bound to.
    """
    if bind_address:
        wanted = p2p_sockets.normalize_address(bind_address)
        if wanted == "0.0.0.0":
            return "127.0.0.1"
        if wanted == "::":
            return "::1"
        return wanted
    addresses = [p2p_sockets.normalize_address(item["address"]) for item in listeners]
    if "0.0.0.0" in addresses:
        return "127.0.0.1"
    if "::" in addresses:
        return "::1"
    for address in addresses:
        if ipaddress.ip_address(address).is_loopback:
            return address
    return addresses[0] if addresses else "127.0.0.1"
