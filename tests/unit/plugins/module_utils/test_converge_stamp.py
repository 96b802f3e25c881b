# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/converge_stamp.py.

Real files under tmp_path, the real import probe run with this interpreter, and injected
fakes for systemctl, the p2p_listener check and nvidia-smi (fed the sample outputs in
tests/fixtures/nvidia-smi/samples).
"""

from __future__ import absolute_import, division, print_function

import datetime
import hashlib
import hmac
import json
import os
import re
import stat
import subprocess
import sys

import pytest

from ansible_collections.ringrift.cluster.plugins.module_utils import converge_stamp as cs
from ansible_collections.ringrift.cluster.plugins.module_utils import nvidia_smi
from ansible_collections.ringrift.cluster.plugins.module_utils import python_imports

__metaclass__ = type

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "nvidia-smi", "samples")
T1 = datetime.datetime(2026, 11, 29, 5, 2, 11)
T2 = datetime.datetime(2026, 11, 30, 6, 0, 0)
LISTENER = {"port": 8770, "node_id": "n1", "health_path": "/health", "service_name": "ringrift-p2p",
            "service_manager": "none", "cmdline_regex": "p2p_orchestrator"}
HEALTHY = {"state_ok": True, "diagnosis": "healthy", "msg": "pid 42 listens on port 8770", "service_manager": "none",
           "managed_pid": None, "pid": 42}
KEY = b"k" * 32  # a stamp key for tests that build stamps without a node directory
# The one service-manager reader (service_manager.read_service) asks every property in one call.
SYSTEMCTL_ARGV = ["systemctl", "show", "ringrift-p2p.service"] + [
    arg for prop in ("LoadState", "ActiveState", "SubState", "NRestarts", "MainPID", "UnitFileState", "NeedDaemonReload")
    for arg in ("-p", prop)]


def sample(name):
    with open(os.path.join(SAMPLES, name)) as handle:
        return handle.read()


def write(path, text, mode=0o644):
    path = str(path)
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


# --------------------------------------------------------------------------- fakes

class Runner(object):
    """runner(argv) -> (rc, out, err): canned `systemctl show`, real subprocess for anything else."""

    def __init__(self, systemctl=(0, "UnitFileState=enabled\nNeedDaemonReload=no\n", "")):
        self.systemctl = systemctl
        self.calls = []

    def __call__(self, argv):
        self.calls.append(list(argv))
        if argv[0] == "systemctl":
            return self.systemctl
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              timeout=60, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def commands(self, name):
        return [argv for argv in self.calls if argv[0] == name]


class Inspect(object):
    """inspect(options, runner=...) -> a canned p2p_listener result; records the options."""

    def __init__(self, result=None, error=None):
        self.result = dict(HEALTHY if result is None else result)
        self.error = error
        self.calls = []

    def __call__(self, options, runner=None):
        self.calls.append((dict(options), runner))
        if self.error:
            raise self.error
        return dict(self.result)


class GpuRunner(object):
    def __init__(self, verdict=None):
        self.verdict = verdict or {"diagnosis": "ok", "msg": "8 x NVIDIA H100 80GB HBM3", "count": 8}
        self.calls = []

    def __call__(self, gpu):
        self.calls.append(dict(gpu))
        return dict(self.verdict)


def never_gpu(gpu):
    raise AssertionError("gpu_runner called without a GPU check in the stamp: %r" % (gpu,))


@pytest.fixture
def node(tmp_path):
    """Managed files and a helper that writes a stamp for them (real file_record)."""
    class Node(object):
        conf = write(tmp_path / "node.conf", "node_id=n1\n", 0o600)
        unit = write(tmp_path / "ringrift-p2p.service", "[Service]\nExecStart=/bin/true\n", 0o644)
        stamp_path = str(tmp_path / "state" / "converge-stamp.json")

        def stamp(self, fingerprint="sha256:abc", files=None, python=sys.executable, imports=("json",),
                  listener=None, gpu=None):
            key = cs.node_key(cs.key_path_for(self.stamp_path), create=True)
            built = cs.build_stamp(fingerprint, [self.conf, self.unit] if files is None else files, python, list(imports),
                                   dict(LISTENER if listener is None else listener), gpu, key=key)
            changed, written = cs.write_stamp(self.stamp_path, built, now=T1)
            assert changed
            return written

    return Node()


def verify(node, fingerprint="sha256:abc", runner=None, gpu_runner=never_gpu, inspect=None, **kwargs):
    runner = runner or Runner()
    inspect = inspect or Inspect()
    return cs.verify(node.stamp_path, fingerprint, runner, gpu_runner, inspect=inspect, **kwargs)


# --------------------------------------------------------------------------- file_record

def test_file_record_of_a_missing_file(tmp_path):
    assert cs.file_record(str(tmp_path / "nope"), KEY) == {"exists": False}


def test_file_record_has_checksum_mode_and_owner(tmp_path):
    data = b"\x00binary\xffcontent\n" * 10000  # more than one 64 KiB read block
    path = str(tmp_path / "blob")
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o640)
    info = os.stat(path)
    assert cs.file_record(path, KEY) == {
        "exists": True,
        "digest": "hmac-sha256:" + hmac.new(KEY, data, hashlib.sha256).hexdigest(),
        "mode": "0640",
        "uid": info.st_uid,
        "gid": info.st_gid,
    }


def test_file_record_mode_keeps_special_bits_and_drops_the_file_type(tmp_path):
    path = write(tmp_path / "tool", "#!/bin/sh\n", 0o755)
    os.chmod(path, 0o4755)
    assert cs.file_record(path, KEY)["mode"] == "4755"
    assert cs.file_record(write(tmp_path / "empty", "", 0o600), KEY)["digest"] == cs.keyed_digest(KEY, b"")


# --------------------------------------------------------------------------- build_stamp

def build(**overrides):
    args = {"fingerprint": "sha256:abc", "files": ["/etc/ringrift/node.conf"], "python": "/usr/bin/python3",
            "imports": ["json"], "listener": dict(LISTENER), "gpu": None, "key": KEY,
            "file_reader": lambda path: {"exists": False}}
    args.update(overrides)
    return cs.build_stamp(**args)


@pytest.mark.parametrize("overrides, message", [
    ({"fingerprint": ""}, "fingerprint must be a non-empty string"),
    ({"fingerprint": None}, "fingerprint must be a non-empty string"),
    ({"files": "/etc/ringrift/node.conf"}, "files must be a list"),
    ({"files": ["/etc/ok", "relative/node.conf"]}, "files: 'relative/node.conf' is not an absolute path"),
    ({"python": "venv/bin/python"}, "python: 'venv/bin/python' is not an absolute path"),
    ({"imports": "json"}, "imports must be a list"),
    ({"imports": ["json", "bad-name"]}, "imports: 'bad-name' is not a module name"),
    ({"imports": ["1abc"]}, "imports: '1abc' is not a module name"),
    ({"imports": ["a..b"]}, "imports: 'a..b' is not a module name"),
    ({"imports": ["os; import sys"]}, "imports: 'os; import sys' is not a module name"),
    ({"listener": None}, "listener must be a dict"),
    ({"listener": dict(LISTENER, service_manager="auto")}, "listener.service_manager must be one of systemd, supervisor, none (resolved), got 'auto'"),
    ({"listener": dict(LISTENER, service_manager=None)}, "listener.service_manager must be one of"),
    ({"listener": dict(LISTENER, prot=8770, zzz=1)}, "listener: unknown option(s) prot, zzz"),
    ({"listener": dict(LISTENER, state="listening")}, "listener: unknown option(s) state"),
    ({"listener": dict(LISTENER, port=None)}, "listener.port is required"),
    ({"listener": dict(LISTENER, service_name="")}, "listener.service_name must be a unit or program name"),
    ({"listener": dict(LISTENER, cmdline_regex="p2p_(orchestrator")}, "listener: cmdline_regex 'p2p_(orchestrator' is not a valid regular expression"),
    ({"listener": dict(LISTENER, port=70000)}, "listener: port must be 1-65535"),
    ({"listener": dict(LISTENER, bind_address="localhost")}, "listener: bind_address must be an IP address"),
    ({"gpu": ["nvidia-smi"]}, "gpu must be a dict"),
    ({"gpu": {"executable": "nvidia-smi", "count": 8}}, "gpu: unknown option(s) count"),
    ({"gpu": {"expected_count": 8}}, "gpu.executable is required"),
])
def test_build_stamp_rejects_bad_input_naming_the_field(overrides, message):
    with pytest.raises(cs.StampError) as err:
        build(**overrides)
    assert message in str(err.value)


def test_stamp_error_is_a_value_error():
    assert issubclass(cs.StampError, ValueError)


def test_build_stamp_happy_path_sorts_dedups_and_drops_none():
    read = []

    def reader(path):
        read.append(path)
        return {"exists": True, "digest": "h:" + path, "mode": "0644", "uid": 0, "gid": 0}

    listener = dict(LISTENER, bind_address=None, log_path=None, check_port_in_cmdline=False, health_timeout=5.0)
    gpu = {"executable": "nvidia-smi", "expected_count": 8, "expected_model": None, "timeout": 30,
           "check_torch": False, "python": None, "fail_on_mismatch": False}
    stamp = cs.build_stamp("sha256:abc", ["/z/unit", "/a/conf", "/z/unit", "/m/x"], "/opt/venv/bin/python",
                           ["yaml", "aiohttp", "psutil", "aiohttp", "aiohttp.web"], listener, gpu, key=KEY, file_reader=reader)
    assert sorted(read) == ["/a/conf", "/m/x", "/z/unit"]  # each file read once
    assert list(stamp["files"]) == ["/a/conf", "/m/x", "/z/unit"]
    assert stamp["files"]["/m/x"]["digest"] == "h:/m/x"
    assert stamp["python"] == {"interpreter": "/opt/venv/bin/python", "imports": ["aiohttp", "aiohttp.web", "psutil", "yaml"]}
    assert stamp["listener"] == {"port": 8770, "node_id": "n1", "cmdline_regex": "p2p_orchestrator", "check_port_in_cmdline": False,
                                 "health_path": "/health", "health_timeout": 5.0, "service_name": "ringrift-p2p",
                                 "service_manager": "none"}
    assert stamp["gpu"] == {"executable": "nvidia-smi", "expected_count": 8, "timeout": 30, "check_torch": False,
                            "fail_on_mismatch": False}
    assert stamp["format"] == cs.FORMAT == 2
    assert stamp["fingerprint"] == "hmac-sha256:" + hmac.new(KEY, b"sha256:abc", hashlib.sha256).hexdigest()
    assert "converged_at" not in stamp
    assert set(stamp) == set(cs.CONTENT_KEYS)
    json.dumps(stamp)  # JSON-serialisable as is


def test_build_stamp_does_not_modify_the_listener_it_was_given():
    listener = dict(LISTENER, log_path=None)
    before = dict(listener)
    build(listener=listener)
    assert listener == before


def test_build_stamp_reads_real_files_and_keeps_missing_ones(tmp_path):
    present = write(tmp_path / "a", "x", 0o600)
    missing = str(tmp_path / "b")
    stamp = cs.build_stamp("sha256:abc", [present, missing], sys.executable, [], dict(LISTENER), key=KEY)
    assert stamp["files"][present] == cs.file_record(present, KEY)
    assert stamp["files"][missing] == {"exists": False}
    assert stamp["gpu"] is None
    assert stamp["python"]["imports"] == []


def test_content_ignores_converged_at():
    stamp = build()
    assert cs.content(dict(stamp, converged_at="2026-01-01T00:00:00Z")) == cs.content(stamp) == stamp


# --------------------------------------------------------------------------- write_stamp / read_stamp

def test_write_stamp_creates_the_directory_and_a_root_only_file(tmp_path):
    path = str(tmp_path / "var" / "lib" / "ringrift" / "stamp.json")
    stamp = build()
    changed, written = cs.write_stamp(path, stamp, now=T1)
    assert changed is True
    assert written == dict(stamp, converged_at="2026-11-29T05:02:11Z")
    assert stat.S_IMODE(os.stat(path).st_mode) == cs.STAMP_MODE == 0o644
    with open(path) as handle:
        assert json.load(handle) == written
    assert cs.read_stamp(path) == written
    assert os.listdir(os.path.dirname(path)) == ["stamp.json"]  # no temp file left behind


def test_write_stamp_without_now_uses_the_current_utc_time(tmp_path):
    path = str(tmp_path / "stamp.json")
    before = datetime.datetime.utcnow().replace(microsecond=0)
    _changed, written = cs.write_stamp(path, build())
    after = datetime.datetime.utcnow()
    at = datetime.datetime.strptime(written["converged_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert before <= at <= after


def test_identical_second_write_changes_nothing_and_keeps_converged_at(tmp_path):
    path = str(tmp_path / "stamp.json")
    assert cs.write_stamp(path, build(), now=T1)[0] is True
    inode = os.stat(path).st_ino
    with open(path, "rb") as handle:
        raw = handle.read()
    changed, written = cs.write_stamp(path, build(), now=T2)
    assert changed is False
    assert written["converged_at"] == "2026-11-29T05:02:11Z"
    assert written == cs.read_stamp(path)
    assert os.stat(path).st_ino == inode
    with open(path, "rb") as handle:
        assert handle.read() == raw


def test_changed_content_rewrites_with_a_new_converged_at(tmp_path):
    path = str(tmp_path / "stamp.json")
    cs.write_stamp(path, build(), now=T1)
    changed, written = cs.write_stamp(path, build(imports=["json", "yaml"]), now=T2)
    assert changed is True
    assert written["converged_at"] == "2026-11-30T06:00:00Z"
    on_disk = cs.read_stamp(path)
    assert on_disk == written
    assert on_disk["python"]["imports"] == ["json", "yaml"]
    assert stat.S_IMODE(os.stat(path).st_mode) == cs.STAMP_MODE == 0o644
    # any content key counts, the fingerprint too
    assert cs.write_stamp(path, build(imports=["json", "yaml"], fingerprint="sha256:new"), now=T2)[0] is True


def test_write_stamp_check_mode_writes_nothing(tmp_path):
    directory = tmp_path / "not-yet"
    path = str(directory / "stamp.json")
    changed, written = cs.write_stamp(path, build(), now=T1, check_mode=True)
    assert changed is True
    assert written["converged_at"] == "2026-11-29T05:02:11Z"
    assert written["fingerprint"] == cs.keyed_digest(KEY, "sha256:abc")
    assert not directory.exists()

    real = str(tmp_path / "stamp.json")
    cs.write_stamp(real, build(), now=T1)
    with open(real, "rb") as handle:
        raw = handle.read()
    assert cs.write_stamp(real, build(), now=T2, check_mode=True) == (False, cs.read_stamp(real))
    changed, would = cs.write_stamp(real, build(fingerprint="sha256:other"), now=T2, check_mode=True)
    assert changed is True
    assert would["fingerprint"] == cs.keyed_digest(KEY, "sha256:other")
    with open(real, "rb") as handle:
        assert handle.read() == raw  # untouched


def test_write_stamp_replaces_an_unreadable_stamp(tmp_path):
    path = write(tmp_path / "stamp.json", "{garbage", 0o644)
    changed, written = cs.write_stamp(path, build(), now=T1)
    assert changed is True
    assert cs.read_stamp(path) == written
    assert stat.S_IMODE(os.stat(path).st_mode) == cs.STAMP_MODE == 0o644


def test_write_stamp_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    path = str(tmp_path / "stamp.json")
    cs.write_stamp(path, build(), now=T1)
    with open(path, "rb") as handle:
        before = handle.read()

    def half_then_fail(obj, out, **kwargs):
        out.write('{"format": 2, "finger')
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cs.json, "dump", half_then_fail)
    with pytest.raises(OSError):
        cs.write_stamp(path, build(fingerprint="sha256:new"), now=T2)
    monkeypatch.undo()
    with open(path, "rb") as handle:
        assert handle.read() == before  # the old stamp is still whole
    assert os.listdir(str(tmp_path)) == ["stamp.json"]  # the temp file is removed


def test_write_stamp_renames_a_temp_file_from_the_same_directory(tmp_path, monkeypatch):
    path = str(tmp_path / "stamp.json")
    renames = []
    real_rename = os.rename

    def spy(src, dst):
        renames.append((src, dst, stat.S_IMODE(os.stat(src).st_mode)))
        return real_rename(src, dst)

    monkeypatch.setattr(cs.os, "rename", spy)
    cs.write_stamp(path, build(), now=T1)
    assert len(renames) == 1
    src, dst, mode = renames[0]
    assert dst == path
    assert os.path.dirname(src) == str(tmp_path)
    assert os.path.basename(src).startswith(".converge-stamp.")
    assert mode == cs.STAMP_MODE  # its final mode before it becomes visible


def test_read_stamp_missing_is_none(tmp_path):
    assert cs.read_stamp(str(tmp_path / "none.json")) is None
    assert cs.read_stamp(str(tmp_path / "no-dir" / "none.json")) is None


@pytest.mark.parametrize("text, message", [
    ("{not json", "not JSON"),
    ("", "not JSON"),
    ('{"format": 3, "fingerprint": "x"}', "not a format-2 converge stamp"),
    ('{"fingerprint": "x"}', "not a format-2 converge stamp"),
    ('[1, 2]', "not a format-2 converge stamp"),
    ('"format"', "not a format-2 converge stamp"),
])
def test_read_stamp_rejects_what_is_not_a_stamp(tmp_path, text, message):
    path = write(tmp_path / "stamp.json", text)
    with pytest.raises(cs.StampError) as err:
        cs.read_stamp(path)
    assert message in str(err.value)
    assert path in str(err.value)


def test_read_stamp_of_a_directory_is_a_stamp_error(tmp_path):
    with pytest.raises(cs.StampError) as err:
        cs.read_stamp(str(tmp_path))
    assert "cannot read" in str(err.value)


# --------------------------------------------------------------------------- verify

def test_verify_everything_holds(node):
    written = node.stamp()
    runner, inspect = Runner(), Inspect()
    result = verify(node, runner=runner, inspect=inspect)
    assert result["converged"] is True, result["reasons"]
    assert result["reasons"] == []
    assert result["warnings"] == []
    assert result["converged_at"] == written["converged_at"] == "2026-11-29T05:02:11Z"
    assert result["stamp_path"] == node.stamp_path
    assert result["listener"] == HEALTHY
    assert result["gpu"] is None
    # the import probe really ran with the recorded interpreter; no systemctl under service_manager none
    assert runner.commands(sys.executable) == [[sys.executable, "-c", python_imports.IMPORT_SCRIPT, '["json"]']]
    assert runner.commands("systemctl") == []
    # the listener check is the recorded one, once, with no wait and without failing
    assert len(inspect.calls) == 1
    options, passed_runner = inspect.calls[0]
    assert passed_runner is runner
    assert options == dict(LISTENER, state="listening", timeout=0, fail_on_mismatch=False)


def test_verify_without_stamp_names_the_path(node):
    inspect = Inspect()
    result = verify(node, inspect=inspect)
    assert result["converged"] is False
    assert result["reasons"] == ["no converge stamp at %s (not converged by site.yml yet)" % node.stamp_path]
    assert result["converged_at"] is None
    assert result["listener"] is None
    assert inspect.calls == []


def test_verify_with_an_unreadable_stamp(node):
    os.makedirs(os.path.dirname(node.stamp_path))
    write(node.stamp_path, "{half a stamp")
    result = verify(node)
    assert result["converged"] is False
    assert len(result["reasons"]) == 1
    assert result["reasons"][0].startswith("unreadable converge stamp: %s: not JSON" % node.stamp_path)


def test_verify_fingerprint_mismatch(node):
    node.stamp()
    result = verify(node, fingerprint="sha256:different")
    assert result["converged"] is False
    assert result["reasons"] == ["settings or collection code changed since the last converge (2026-11-29T05:02:11Z)"]


def test_verify_file_changed(node):
    node.stamp()
    write(node.conf, "node_id=n2\n", 0o600)
    result = verify(node)
    assert result["converged"] is False
    assert result["reasons"] == ["%s changed since the last converge" % node.conf]


def test_verify_file_gone(node):
    node.stamp()
    os.unlink(node.unit)
    result = verify(node)
    assert result["reasons"] == ["%s is gone" % node.unit]
    assert result["converged"] is False


def test_verify_file_appeared(node, tmp_path):
    absent = str(tmp_path / "override.conf")
    node.stamp(files=[node.conf, absent])
    assert verify(node)["converged"] is True  # still absent: fine
    write(absent, "x=1\n")
    result = verify(node)
    assert result["converged"] is False
    assert result["reasons"] == ["%s appeared" % absent]


def test_verify_mode_changed(node):
    node.stamp()
    os.chmod(node.conf, 0o644)
    result = verify(node)
    assert result["converged"] is False
    assert len(result["reasons"]) == 1
    reason = result["reasons"][0]
    assert reason.startswith("%s has mode 0644 owner " % node.conf)
    assert reason.endswith("converged as 0600 %d:%d" % (os.getuid(), os.getgid()))


def test_verify_owner_changed(node):
    node.stamp()

    key = cs.node_key(cs.key_path_for(node.stamp_path))

    def chowned(path):
        record = cs.file_record(path, key)
        if path == node.unit:
            record["uid"] = record["uid"] + 1000
        return record

    result = verify(node, file_reader=chowned)
    assert result["reasons"] == ["%s has mode 0644 owner %d:%d, converged as 0644 %d:%d" % (
        node.unit, os.stat(node.unit).st_uid + 1000, os.getgid(), os.getuid(), os.getgid())]


def test_verify_reports_every_file_difference_in_path_order(node, tmp_path):
    extra = str(tmp_path / "zz-extra")
    node.stamp(files=[node.conf, node.unit, extra])
    os.unlink(node.conf)
    write(node.unit, "[Service]\nExecStart=/bin/false\n")
    write(extra, "new")
    result = verify(node, fingerprint="sha256:changed")
    assert result["reasons"] == [
        "settings or collection code changed since the last converge (2026-11-29T05:02:11Z)",
        "%s is gone" % node.conf,
        "%s changed since the last converge" % node.unit,
        "%s appeared" % extra,
    ]


def test_verify_managed_file_replaced_by_a_directory_is_a_reason(node):
    node.stamp()
    os.unlink(node.unit)
    os.mkdir(node.unit)
    result = verify(node)
    assert result["converged"] is False
    assert result["reasons"] == ["%s not a regular file" % node.unit]


def test_file_record_of_an_unreadable_file_is_an_error_record(tmp_path, monkeypatch):
    path = tmp_path / "node.conf"
    path.write_text("x")

    def refuse(dummy_key, dummy_path):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(cs, "_keyed_file_digest", refuse)
    assert cs.file_record(str(path), KEY) == {"exists": True, "error": "cannot read: Permission denied"}


def test_build_stamp_refuses_a_managed_path_that_is_not_a_file(tmp_path):
    with pytest.raises(cs.StampError, match="files: %s not a regular file" % re.escape(str(tmp_path))):
        cs.build_stamp("sha256:x", [str(tmp_path)], sys.executable, [], dict(LISTENER), key=KEY)


def test_relative_stamp_paths_are_refused():
    with pytest.raises(cs.StampError, match="stamp path must be absolute"):
        cs.write_stamp("rel-stamp.json", {"format": 1})
    with pytest.raises(cs.StampError, match="stamp path must be absolute"):
        cs.read_stamp("rel-stamp.json")


def test_write_stamp_restores_the_mode_of_an_unchanged_stamp(tmp_path):
    path = str(tmp_path / "stamp.json")
    stamp = cs.build_stamp("sha256:x", [], sys.executable, [], dict(LISTENER), key=KEY)
    assert cs.write_stamp(path, stamp)[0] is True
    os.chmod(path, 0o600)
    changed, written = cs.write_stamp(path, stamp, check_mode=True)
    assert changed is True and oct(os.stat(path).st_mode & 0o777) == "0o600"
    changed, written = cs.write_stamp(path, stamp)
    # Readable without root: the audit of a `ubuntu` login reads converged_at from it.
    assert changed is True and oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert cs.write_stamp(path, stamp)[0] is False


# imports: the real probe, this interpreter

def test_verify_imports_real_probe_ok(node):
    node.stamp(imports=["json", "os.path", "importlib"])
    runner = Runner()
    result = verify(node, runner=runner)
    assert result["converged"] is True, result["reasons"]
    assert runner.commands(sys.executable) == [[sys.executable, "-c", python_imports.IMPORT_SCRIPT, '["importlib", "json", "os.path"]']]


def test_verify_imports_real_probe_names_the_missing_module(node):
    node.stamp(imports=["json", "no_such_module_xyz"])
    result = verify(node)
    assert result["converged"] is False
    assert result["reasons"] == [
        "%s cannot import no_such_module_xyz (ModuleNotFoundError: No module named 'no_such_module_xyz')" % sys.executable]


def test_verify_imports_real_probe_reports_a_module_that_fails_on_import(node, tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "broken_dep_xyz.py").write_text("raise RuntimeError('needs libfoo.so')\n")
    monkeypatch.setenv("PYTHONPATH", str(lib))
    node.stamp(imports=["broken_dep_xyz", "json", "no_such_module_xyz"])
    result = verify(node)
    assert result["reasons"] == [
        "%s cannot import broken_dep_xyz (RuntimeError: needs libfoo.so)" % sys.executable,
        "%s cannot import no_such_module_xyz (ModuleNotFoundError: No module named 'no_such_module_xyz')" % sys.executable,
    ]


def test_import_probe_output_is_json_on_the_last_line():
    proc = subprocess.run([sys.executable, "-c", python_imports.IMPORT_SCRIPT, '["json", "no_such_module_xyz"]'],
                          stdout=subprocess.PIPE, universal_newlines=True, check=True)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "python": sys.executable, "ok": {"json": json.__version__},
        "missing": {"no_such_module_xyz": "ModuleNotFoundError: No module named 'no_such_module_xyz'"}}


def test_verify_missing_interpreter(node, tmp_path):
    gone = str(tmp_path / "venv" / "bin" / "python")
    node.stamp(python=gone)
    runner = Runner()
    result = verify(node, runner=runner)
    assert result["converged"] is False
    assert result["reasons"] == ["the daemon's interpreter %s is missing" % gone]
    assert runner.commands(gone) == []


def test_verify_interpreter_that_is_not_executable(node, tmp_path):
    python = write(tmp_path / "python", "#!/bin/sh\n", 0o644)
    node.stamp(python=python)
    result = verify(node)
    assert result["reasons"] == ["the daemon's interpreter %s is missing" % python]


def test_verify_import_probe_that_does_not_run(node):
    node.stamp()

    def runner(argv):
        assert argv[0] == sys.executable
        return 1, "", "Fatal Python error: init_fs_encoding\n"

    result = verify(node, runner=runner)
    assert result["reasons"] == ["%s did not run the import check (rc=1): Fatal Python error: init_fs_encoding" % sys.executable]

    def garbage(argv):
        return 0, "not json\n", ""

    assert verify(node, runner=garbage)["reasons"] == ["%s did not run the import check (rc=0): not json" % sys.executable]


def test_verify_without_imports_does_not_run_the_interpreter(node, tmp_path):
    node.stamp(python=str(tmp_path / "gone" / "python"), imports=())
    runner = Runner()
    result = verify(node, runner=runner)
    assert result["converged"] is True, result["reasons"]
    assert runner.calls == []


# systemd unit

SYSTEMD = dict(LISTENER, service_manager="systemd")
SYSTEMD_HEALTHY = dict(HEALTHY, service_manager="systemd", managed_pid=42)


def test_verify_systemd_unit_enabled(node):
    node.stamp(listener=SYSTEMD)
    runner = Runner(systemctl=(0, "UnitFileState=enabled\nNeedDaemonReload=no\n", ""))
    result = verify(node, runner=runner, inspect=Inspect(SYSTEMD_HEALTHY))
    assert result["converged"] is True, result["reasons"]
    assert runner.commands("systemctl") == [SYSTEMCTL_ARGV]


@pytest.mark.parametrize("systemctl, reasons", [
    ((0, "UnitFileState=disabled\nNeedDaemonReload=no\n", ""),
     ["ringrift-p2p.service is disabled, not enabled (it would not start on boot)"]),
    ((0, "UnitFileState=masked\nNeedDaemonReload=no\n", ""),
     ["ringrift-p2p.service is masked, not enabled (it would not start on boot)"]),
    ((0, "UnitFileState=\nNeedDaemonReload=no\n", ""),
     ["ringrift-p2p.service is unknown, not enabled (it would not start on boot)"]),
    ((0, "NeedDaemonReload=yes\nUnitFileState=enabled\n", ""),
     ["ringrift-p2p.service changed on disk and systemd has not reloaded it"]),
    ((0, "UnitFileState=disabled\nNeedDaemonReload=yes\n", ""),
     ["ringrift-p2p.service is disabled, not enabled (it would not start on boot)",
      "ringrift-p2p.service changed on disk and systemd has not reloaded it"]),
    ((1, "", "System has not been booted with systemd as init system (PID 1). Can't operate.\n"),
     ["systemctl show ringrift-p2p.service failed (rc=1): System has not been booted with systemd as init system (PID 1). Can't operate."]),
])
def test_verify_systemd_unit_problems(node, systemctl, reasons):
    node.stamp(listener=SYSTEMD)
    runner = Runner(systemctl=systemctl)
    result = verify(node, runner=runner, inspect=Inspect(SYSTEMD_HEALTHY))
    assert result["converged"] is False
    assert result["reasons"] == reasons
    assert runner.commands("systemctl") == [SYSTEMCTL_ARGV]


def test_verify_systemd_uses_the_recorded_service_name(node):
    node.stamp(listener=dict(SYSTEMD, service_name="p2p-canary"))
    runner = Runner(systemctl=(0, "UnitFileState=disabled\n", ""))
    result = verify(node, runner=runner, inspect=Inspect(SYSTEMD_HEALTHY))
    assert runner.commands("systemctl")[0][2] == "p2p-canary.service"
    assert result["reasons"] == ["p2p-canary.service is disabled, not enabled (it would not start on boot)"]


def test_verify_supervisor_does_not_ask_systemctl(node):
    node.stamp(listener=dict(LISTENER, service_manager="supervisor"))
    runner = Runner(systemctl=(0, "UnitFileState=disabled\nNeedDaemonReload=yes\n", ""))
    result = verify(node, runner=runner, inspect=Inspect(dict(HEALTHY, service_manager="supervisor", managed_pid=42)))
    assert result["converged"] is True, result["reasons"]
    assert runner.commands("systemctl") == []


# listener

def test_verify_daemon_not_healthy(node):
    node.stamp()
    down = {"state_ok": False, "diagnosis": "not_listening", "msg": "nothing listens on port 8770",
            "service_manager": "none", "managed_pid": None}
    result = verify(node, inspect=Inspect(down))
    assert result["converged"] is False
    assert result["reasons"] == ["the daemon is not_listening: nothing listens on port 8770"]
    assert result["listener"] == down


def test_verify_managed_daemon_without_main_pid(node):
    node.stamp(listener=SYSTEMD)
    result = verify(node, runner=Runner(), inspect=Inspect(dict(SYSTEMD_HEALTHY, managed_pid=None)))
    assert result["converged"] is False
    assert result["reasons"] == ["systemd could not confirm it runs ringrift-p2p (main PID unknown)"]


def test_verify_unmanaged_listener_does_not_need_a_main_pid(node):
    node.stamp()
    result = verify(node, inspect=Inspect(dict(HEALTHY, service_manager=None, managed_pid=None)))
    assert result["converged"] is True, result["reasons"]


def test_verify_invalid_recorded_listener_check(node):
    node.stamp()
    result = verify(node, inspect=Inspect(error=ValueError("port must be 1-65535, got 0")))
    assert result["converged"] is False
    assert result["reasons"] == ["the recorded listener check is invalid: port must be 1-65535, got 0"]
    assert result["listener"] is None


# gpu

GPU = {"executable": "nvidia-smi", "expected_count": 8, "expected_model": "H100", "timeout": 20}
MISMATCH = {"diagnosis": "count_mismatch", "msg": "nvidia-smi reports 7 GPU(s), the inventory expects 8", "count": 7}


def test_verify_gpu_ok(node):
    node.stamp(gpu=dict(GPU, fail_on_mismatch=True))
    gpu_runner = GpuRunner()
    result = verify(node, gpu_runner=gpu_runner)
    assert result["converged"] is True, result["reasons"]
    assert result["gpu"]["diagnosis"] == "ok"
    assert gpu_runner.calls == [dict(GPU, fail_on_mismatch=True)]


@pytest.mark.parametrize("gpu", [dict(GPU, fail_on_mismatch=True), GPU])
def test_verify_gpu_mismatch_is_a_reason(node, gpu):
    node.stamp(gpu=gpu)
    result = verify(node, gpu_runner=GpuRunner(MISMATCH))
    assert result["converged"] is False
    assert result["reasons"] == ["GPU check: count_mismatch: nvidia-smi reports 7 GPU(s), the inventory expects 8"]
    assert result["warnings"] == []
    assert result["gpu"] == MISMATCH


def test_verify_gpu_mismatch_only_warns_without_fail_on_mismatch(node):
    node.stamp(gpu=dict(GPU, fail_on_mismatch=False))
    result = verify(node, gpu_runner=GpuRunner(MISMATCH))
    assert result["converged"] is True
    assert result["reasons"] == []
    assert result["warnings"] == ["GPU check: count_mismatch: nvidia-smi reports 7 GPU(s), the inventory expects 8"]


def test_verify_collects_every_reason(node, tmp_path):
    node.stamp(listener=SYSTEMD, imports=["json", "no_such_module_xyz"], gpu=dict(GPU, fail_on_mismatch=True))
    write(node.conf, "edited\n", 0o600)
    down = {"state_ok": False, "diagnosis": "crashed", "msg": "nothing listens on port 8770; crashed: boom",
            "service_manager": "systemd", "managed_pid": 0}
    result = verify(node, fingerprint="sha256:new", runner=Runner(systemctl=(0, "UnitFileState=disabled\n", "")),
                    inspect=Inspect(down), gpu_runner=GpuRunner(MISMATCH))
    assert result["converged"] is False
    assert result["reasons"] == [
        "settings or collection code changed since the last converge (2026-11-29T05:02:11Z)",
        "%s changed since the last converge" % node.conf,
        "%s cannot import no_such_module_xyz (ModuleNotFoundError: No module named 'no_such_module_xyz')" % sys.executable,
        "ringrift-p2p.service is disabled, not enabled (it would not start on boot)",
        "the daemon is crashed: nothing listens on port 8770; crashed: boom",
        "GPU check: count_mismatch: nvidia-smi reports 7 GPU(s), the inventory expects 8",
    ]


# --------------------------------------------------------------------------- gpu_check

class SmiRunner(object):
    """runner(argv, timeout) -> (rc, out, err, timed_out) with canned answers in order."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, argv, timeout):
        self.calls.append((list(argv), timeout))
        return self.answers.pop(0)


def which_at(path):
    def which(executable):
        return path if executable in ("nvidia-smi", path) else None
    return which


def test_gpu_check_ok_on_eight_h100():
    runner = SmiRunner((0, sample("query-8x-h100-sxm.csv"), "", False))
    verdict = cs.gpu_check(runner, which_at("/usr/bin/nvidia-smi"))(
        {"executable": "nvidia-smi", "expected_count": 8, "expected_model": "H100 SXM", "timeout": 15})
    assert verdict["diagnosis"] == "ok", verdict
    assert verdict["count"] == 8
    assert verdict["count_matches"] is True
    assert verdict["model_matches"] is True
    assert verdict["msg"].startswith("8 x NVIDIA H100 80GB HBM3")
    # One command, given the whole deadline less the time kept to kill and reap it.
    assert [argv for argv, _seconds in runner.calls] == [["/usr/bin/nvidia-smi"] + nvidia_smi.query_args()]
    assert runner.calls[0][1] == pytest.approx(15 - nvidia_smi.REAP_GRACE, abs=0.5)


def test_gpu_check_default_timeout_and_no_expectations():
    runner = SmiRunner((0, sample("query-workstation-mixed.csv"), "", False))
    verdict = cs.gpu_check(runner, which_at("/usr/bin/nvidia-smi"))({"executable": "nvidia-smi"})
    assert verdict["diagnosis"] == "ok"
    assert verdict["count"] == 3
    assert runner.calls[0][1] == pytest.approx(30 - nvidia_smi.REAP_GRACE, abs=0.5)


def test_gpu_check_count_mismatch():
    seven = "".join(sample("query-8x-h100-sxm.csv").splitlines(True)[:7])
    runner = SmiRunner((0, seven, "", False))
    verdict = cs.gpu_check(runner, which_at("/usr/bin/nvidia-smi"))({"executable": "nvidia-smi", "expected_count": 8})
    assert verdict["diagnosis"] == "count_mismatch"
    assert verdict["count"] == 7
    assert verdict["msg"] == "nvidia-smi reports 7 GPU(s), the inventory expects 8"


def test_gpu_check_gpu_fell_off_the_bus():
    runner = SmiRunner((0, sample("query-gpu-lost.txt"), "", False))
    verdict = cs.gpu_check(runner, which_at("/usr/bin/nvidia-smi"))({"executable": "nvidia-smi", "expected_count": 8})
    assert verdict["diagnosis"] == "count_mismatch"
    assert verdict["count"] == 7
    assert "Unable to determine the device handle for GPU0000:A1:00.0: Unknown Error" in verdict["msg"]


def test_gpu_check_model_mismatch():
    runner = SmiRunner((0, sample("query-8x-rtx4090.csv"), "", False))
    verdict = cs.gpu_check(runner, which_at("/usr/bin/nvidia-smi"))(
        {"executable": "nvidia-smi", "expected_count": 8, "expected_model": "H100"})
    assert verdict["diagnosis"] == "model_mismatch"


def test_gpu_check_without_nvidia_smi():
    runner = SmiRunner()
    seen = []

    def which(executable):
        seen.append(executable)
        return None

    verdict = cs.gpu_check(runner, which)({"executable": "/opt/nvidia/bin/nvidia-smi", "expected_count": 8})
    assert verdict["diagnosis"] == "no_nvidia_smi"
    assert seen == ["/opt/nvidia/bin/nvidia-smi"]
    assert runner.calls == []


def test_gpu_check_timed_out():
    runner = SmiRunner((124, "", "", True))
    verdict = cs.gpu_check(runner, which_at("/usr/bin/nvidia-smi"))({"executable": "nvidia-smi", "expected_count": 8, "timeout": 7})
    assert verdict["diagnosis"] == "driver_unreachable"
    assert "nvidia-smi did not answer within 7 s" in verdict["msg"]
    assert verdict["driver_failure_kind"] == "timeout"
    assert runner.calls[0][1] == pytest.approx(7 - nvidia_smi.REAP_GRACE, abs=0.5)


def test_gpu_check_driver_unreachable():
    runner = SmiRunner((9, sample("fail-no-driver-rc9.txt"), "", False))
    verdict = cs.gpu_check(runner, which_at("/usr/bin/nvidia-smi"))({"executable": "nvidia-smi"})
    assert verdict["diagnosis"] == "driver_unreachable"
    assert "couldn't communicate with the NVIDIA driver" in verdict["msg"]


def test_gpu_check_no_devices_is_a_count_mismatch():
    runner = SmiRunner((6, sample("fail-no-devices-rc6.txt"), "", False))
    verdict = cs.gpu_check(runner, which_at("/usr/bin/nvidia-smi"))({"executable": "nvidia-smi", "expected_count": 8})
    assert verdict["diagnosis"] == "count_mismatch"
    assert verdict["count"] == 0


def test_gpu_check_query_failure_is_an_error():
    runner = SmiRunner((3, "", "Unknown option --query-gpu\n", False))
    verdict = cs.gpu_check(runner, which_at("/usr/bin/nvidia-smi"))({"executable": "nvidia-smi", "expected_count": 8})
    assert verdict["diagnosis"] == "error"
    assert verdict["msg"] == "nvidia-smi --query-gpu failed (rc=3): Unknown option --query-gpu"


def test_gpu_check_with_torch():
    torch_ok = json.dumps({"python": "/venv/bin/python", "version": "2.4.0", "cuda_version": "12.4", "available": True,
                           "device_count": 8, "names": ["NVIDIA H100 80GB HBM3"] * 8})
    runner = SmiRunner((0, sample("query-8x-h100-sxm.csv"), "", False), (0, torch_ok + "\n", "", False))
    gpu = {"executable": "nvidia-smi", "expected_count": 8, "check_torch": True, "python": "/venv/bin/python", "timeout": 9}
    verdict = cs.gpu_check(runner, which_at("/usr/bin/nvidia-smi"))(gpu)
    assert verdict["diagnosis"] == "ok", verdict
    assert runner.calls[1][0] == ["/venv/bin/python", "-c", nvidia_smi.TORCH_PROBE]
    assert runner.calls[1][1] <= 9 - nvidia_smi.REAP_GRACE  # what the query left of the one 9 s deadline

    torch_short = json.dumps({"available": True, "device_count": 7})
    runner = SmiRunner((0, sample("query-8x-h100-sxm.csv"), "", False), (0, torch_short, "", False))
    verdict = cs.gpu_check(runner, which_at("/usr/bin/nvidia-smi"))(gpu)
    assert verdict["diagnosis"] == "torch_mismatch"
    assert verdict["msg"] == "torch sees 7 GPU(s), nvidia-smi reports 8"

    runner = SmiRunner((0, sample("query-8x-h100-sxm.csv"), "", False), (124, "", "", True))
    verdict = cs.gpu_check(runner, which_at("/usr/bin/nvidia-smi"))(gpu)
    assert verdict["diagnosis"] == "torch_mismatch"
    assert "timed out: the GPU check has 9 s in all" in verdict["msg"]


def test_gpu_check_no_devices_and_lost_gpu_match_nvidia_gpu_info():
    # The same verdicts nvidia_gpu_info and node_audit give (one function: nvidia_smi.check_gpus).
    for answer, expected in (((6, sample("fail-no-devices-rc6.txt"), "", False), "count_mismatch"),
                             ((15, sample("query-gpu-lost.txt"), "", False), "count_mismatch")):
        verdict = cs.gpu_check(SmiRunner(answer), which_at("/usr/bin/nvidia-smi"))({"executable": "nvidia-smi"})
        assert verdict["diagnosis"] == expected, verdict


def test_verify_reports_an_invalid_recorded_gpu_check(node):
    node.stamp(gpu={"executable": "nvidia-smi", "expected_count": -1})
    result = verify(node, gpu_runner=cs.gpu_check(SmiRunner(), which_at("/usr/bin/nvidia-smi")))
    assert result["converged"] is False
    assert result["reasons"] == ["the recorded GPU check is invalid: expected_count must be 0 or more, got -1"]


def test_gpu_check_feeds_verify(node):
    node.stamp(gpu={"executable": "nvidia-smi", "expected_count": 8, "timeout": 5})
    seven = "".join(sample("query-8x-h100-sxm.csv").splitlines(True)[:7])
    gpu_runner = cs.gpu_check(SmiRunner((0, seven, "", False)), which_at("/usr/bin/nvidia-smi"))
    result = verify(node, gpu_runner=gpu_runner)
    assert result["reasons"] == ["GPU check: count_mismatch: nvidia-smi reports 7 GPU(s), the inventory expects 8"]
    gpu_runner = cs.gpu_check(SmiRunner((0, sample("query-8x-h100-sxm.csv"), "", False)), which_at("/usr/bin/nvidia-smi"))
    assert verify(node, gpu_runner=gpu_runner)["converged"] is True


# --------------------------------------------------------------------------- no secret derivable from the stamp

TOKEN = "rr-cluster-token-0123456789abcdef"


def _fingerprint(token):
    # What site.yml hashes on the controller: resolved variables (one holds the token) and the token file's sha256.
    from ansible_collections.ringrift.cluster.plugins.filter.converge_fingerprint import converge_fingerprint
    return converge_fingerprint({
        "inventory_hostname": "n1", "group_names": ["gpu", "p2p_voters"], "ringrift_p2p_port": 8770,
        "p2p_daemon_auth_token": token, "token_file_sha256": hashlib.sha256(token.encode()).hexdigest(),
    }, with_code=False)


def _node_conf(token):
    return "NODE_ID=n1\nRINGRIFT_CLUSTER_AUTH_TOKEN='%s'\n" % token


def test_the_stamp_does_not_confirm_a_token_guess(node):
    write(node.conf, _node_conf(TOKEN), 0o600)
    written = node.stamp(fingerprint=_fingerprint(TOKEN))
    with open(node.stamp_path) as handle:
        readable = handle.read() + json.dumps(written)
    # Everything one can compute from a (right) guess of the token and what else is known of the node:
    fingerprint = _fingerprint(TOKEN)
    candidates = [fingerprint, fingerprint.split(":", 1)[1],
                  hashlib.sha256(_node_conf(TOKEN).encode()).hexdigest(),
                  hashlib.sha256(TOKEN.encode()).hexdigest()]
    for candidate in candidates:
        assert candidate not in readable
    # Keyed digests without the node's key do not match either (no key, the token as the key).
    for guessed_key in (b"", TOKEN.encode()):
        assert "hmac-sha256:" + hmac.new(guessed_key, fingerprint.encode(), hashlib.sha256).hexdigest() != written["fingerprint"]
        assert ("hmac-sha256:" + hmac.new(guessed_key, _node_conf(TOKEN).encode(), hashlib.sha256).hexdigest()
                != written["files"][node.conf]["digest"])
    # Only the node's key reproduces them.
    key = cs.node_key(cs.key_path_for(node.stamp_path))
    assert written["fingerprint"] == cs.keyed_digest(key, fingerprint)
    assert written["files"][node.conf]["digest"] == cs.keyed_digest(key, _node_conf(TOKEN))


def test_a_token_change_still_invalidates_the_stamp(node):
    node.stamp(fingerprint=_fingerprint(TOKEN))
    assert verify(node, fingerprint=_fingerprint(TOKEN))["converged"] is True
    result = verify(node, fingerprint=_fingerprint(TOKEN + "-rotated"))
    assert result["converged"] is False
    assert result["reasons"] == ["settings or collection code changed since the last converge (2026-11-29T05:02:11Z)"]
    # and a node.conf re-rendered with the new token no longer matches its record
    write(node.conf, _node_conf(TOKEN + "-rotated"), 0o600)
    assert verify(node, fingerprint=_fingerprint(TOKEN))["reasons"] == ["%s changed since the last converge" % node.conf]


def test_the_stamp_key_is_random_private_and_per_node(tmp_path):
    first = cs.node_key(str(tmp_path / "a" / cs.KEY_NAME), create=True)
    second = cs.node_key(str(tmp_path / "b" / cs.KEY_NAME), create=True)
    assert len(first) == cs.KEY_BYTES and first != second
    info = os.stat(str(tmp_path / "a" / cs.KEY_NAME))
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
    assert cs.node_key(str(tmp_path / "a" / cs.KEY_NAME), create=True) == first  # kept once made


def test_verify_without_the_key_converges_in_full_and_creates_nothing(node):
    node.stamp()
    os.unlink(cs.key_path_for(node.stamp_path))
    result = verify(node)
    assert result["converged"] is False
    assert result["reasons"] == ["cannot check the converge stamp: no stamp key at %s" % cs.key_path_for(node.stamp_path)]
    assert not os.path.exists(cs.key_path_for(node.stamp_path))  # the re-check is read-only


def test_a_key_readable_by_others_is_not_trusted_and_the_writer_replaces_it(node):
    node.stamp()
    key_path = cs.key_path_for(node.stamp_path)
    with open(key_path, "rb") as handle:
        old = handle.read()
    os.chmod(key_path, 0o644)
    result = verify(node)
    assert result["converged"] is False
    assert result["reasons"] == ["cannot check the converge stamp: %s: the stamp key has mode 0644 owner %d; "
                                 "it must be %d's alone (0600)" % (key_path, os.geteuid(), os.geteuid())]
    new = cs.node_key(key_path, create=True)
    assert new != old and stat.S_IMODE(os.stat(key_path).st_mode) == 0o600


def test_a_plain_format_1_stamp_is_not_trusted_and_a_converge_replaces_it(node):
    # Stamps written before the digests were keyed hold the plain fingerprint.
    os.makedirs(os.path.dirname(node.stamp_path))
    old = {"format": 1, "fingerprint": _fingerprint(TOKEN), "files": {}, "python": {}, "listener": dict(LISTENER),
           "gpu": None, "converged_at": "2026-11-28T00:00:00Z"}
    write(node.stamp_path, json.dumps(old), 0o600)
    result = verify(node, fingerprint=_fingerprint(TOKEN))
    assert result["converged"] is False
    assert result["converged_at"] == "2026-11-28T00:00:00Z"
    assert result["reasons"] == ["the converge stamp at %s is format 1, from before its digests were keyed; "
                                 "a full converge rewrites it" % node.stamp_path]
    node.stamp(fingerprint=_fingerprint(TOKEN))
    with open(node.stamp_path) as handle:
        assert _fingerprint(TOKEN) not in handle.read()
