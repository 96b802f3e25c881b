# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/p2p_health.py against loopback servers."""

from __future__ import absolute_import, division, print_function

import json
import socket
import time

import pytest

from ansible_collections.ringrift.cluster.plugins.module_utils import p2p_health
from ansible_collections.ringrift.cluster.tests.helpers import free_port

from p2p_fakes import RawServer, drip, http_servers

__metaclass__ = type


@pytest.fixture
def http_server():
    """``start(**kwargs) -> port`` of a loopback health server; all stop with the test."""
    yield from http_servers()


@pytest.fixture
def raw_server():
    servers = []

    def start(reply, host="127.0.0.1"):
        server = RawServer(reply, host)
        servers.append(server)
        return server.port

    yield start
    for server in servers:
        server.close()


def test_check_health_ok_and_node_id(http_server):
    port = http_server()
    ok = p2p_health.check_health("127.0.0.1", port, "/health", 2.0, expected_node_id="gpu-01")
    assert ok["ok"] is True
    assert ok["status"] == 200
    assert ok["json"] == {"healthy": True, "node_id": "gpu-01"}
    assert ok["healthy"] is True
    assert ok["url"] == "http://127.0.0.1:%d/health" % port
    wrong = p2p_health.check_health("127.0.0.1", port, "health", 2.0, expected_node_id="gpu-02")
    assert wrong["ok"] is False
    assert wrong["error"] == "node_id mismatch: expected gpu-02, got gpu-01"


def test_check_health_http_500_refused_and_timeout(http_server):
    failing = p2p_health.check_health("127.0.0.1", http_server(status=500, body={"error": "boom"}), "/health", 2.0)
    assert failing["ok"] is False
    assert failing["status"] == 500
    assert failing["error"] == "HTTP 500"
    refused = p2p_health.check_health("127.0.0.1", free_port(), "/health", 2.0)
    assert refused["ok"] is False
    assert refused["status"] is None
    assert refused["error"] == "connection refused"
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # accepts in the backlog, never answers
    try:
        slow = p2p_health.check_health("127.0.0.1", silent.getsockname()[1], "/health", 0.3)
    finally:
        silent.close()
    assert slow["ok"] is False
    assert slow["error"].startswith("timed out")
    assert slow["elapsed"] >= 0.25


@pytest.mark.parametrize("addresses, bind_address, expected", [
    (["0.0.0.0"], None, "127.0.0.1"),
    (["::"], None, "::1"),
    (["::1"], None, "::1"),
    (["::ffff:127.0.0.1"], None, "127.0.0.1"),
    (["10.0.0.5"], None, "10.0.0.5"),
    (["10.0.0.5", "127.0.0.1"], None, "127.0.0.1"),
    (["0.0.0.0"], "0.0.0.0", "127.0.0.1"),
    (["::1", "127.0.0.1"], "::1", "::1"),
])
def test_health_host(addresses, bind_address, expected):
    assert p2p_health.health_host([{"address": a} for a in addresses], bind_address) == expected


@pytest.mark.parametrize("payload", [
    b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 200,  # the head never ends
    b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + b" " * 200,  # the body trickles
])
def test_check_health_deadline_bounds_the_whole_request_not_each_read(raw_server, payload):
    port = raw_server(drip(payload, interval=0.1))
    started = time.time()
    result = p2p_health.check_health("127.0.0.1", port, "/health", 1.0)
    took = time.time() - started
    assert result["ok"] is False
    assert result["error"] == "timed out after 1.0s (whole request)"
    assert took < 1.8, took
    assert result["elapsed"] < 1.8


def test_check_health_bounds_the_body_and_the_head(raw_server):
    def huge_length(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n{")

    def endless(conn, stop):
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n")
        chunk = b"[" * 16384
        while not stop.is_set():
            conn.sendall(chunk)

    def long_head(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"X-Pad: a\r\n" * 5000)

    declared = p2p_health.check_health("127.0.0.1", raw_server(huge_length), "/health", 5.0)
    assert declared["ok"] is False
    assert declared["error"] == "body of 10485760 bytes is over the 65536 byte limit"
    streamed = p2p_health.check_health("127.0.0.1", raw_server(endless), "/health", 5.0)
    assert streamed["ok"] is False
    assert streamed["error"] == "body over the 65536 byte limit"
    assert streamed["elapsed"] < 4
    head = p2p_health.check_health("127.0.0.1", raw_server(long_head), "/health", 5.0)
    assert head["error"] == "response head longer than 16384 bytes"


def test_check_health_reads_chunked_and_close_delimited_bodies(raw_server):
    body = json.dumps({"healthy": True, "node_id": "gpu-01"}).encode()

    def chunked(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (body[:10], body[10:]):
            conn.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        conn.sendall(b"0\r\n\r\n")
        stop.wait(5)  # keeps the connection open: the end is the last chunk, not EOF

    def close_delimited(conn, stop):
        conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + body)

    for reply in (chunked, close_delimited):
        result = p2p_health.check_health("127.0.0.1", raw_server(reply), "/health", 2.0, expected_node_id="gpu-01")
        assert result["ok"] is True, result
        assert result["json"] == {"healthy": True, "node_id": "gpu-01"}
        assert result["elapsed"] < 1.5


def test_check_health_not_http(raw_server):
    def garbage(conn, stop):
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    result = p2p_health.check_health("127.0.0.1", raw_server(garbage), "/health", 2.0)
    assert result["ok"] is False
    assert result["error"].startswith("not an HTTP answer")


@pytest.mark.parametrize("addresses, bind_address, expected", [
    (["127.0.0.2"], None, "127.0.0.2"),
    (["10.0.0.5", "127.0.0.3"], None, "127.0.0.3"),
    (["10.0.0.5", "::"], None, "::1"),
])
def test_health_host_uses_the_owners_addresses(addresses, bind_address, expected):
    assert p2p_health.health_host([{"address": a} for a in addresses], bind_address) == expected
