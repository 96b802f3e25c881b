# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse C(nvidia-smi) output and classify what it says about a GPU node.

Standard library only, Python 3.8+.  The parsers are pure functions;
:func:`check_gpus` is the one GPU check every caller runs (the
C(nvidia_gpu_info) module, the converge stamp's re-check, C(node_audit)): it
runs the commands under one total deadline, classifies what they print and
compares it with the inventory, so the same node gets the same verdict from
all of them.  Formats handled:

* C(nvidia-smi --query-gpu=<QUERY_FIELDS> --format=csv,noheader,nounits):
  one line per GPU, values separated by C(", "); a value can be C([N/A]),
  C([Not Supported]), C([Unknown Error]) and similar bracketed placeholders.
* The banner of a plain C(nvidia-smi) call:
  C(| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4 |)
  (all table generations from 4xx to 58x use this line).
* C(nvidia-smi -q): C(Driver Version : 550.54.15) and C(CUDA Version : 12.4)
  lines near the top.
* The driver failure messages C(nvidia-smi) prints instead of any of these.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import time

from ansible_collections.ringrift.cluster.plugins.module_utils import process

# Order matters: parse_query_csv maps columns by position.
QUERY_FIELDS = (
    'index',
    'name',
    'uuid',
    'memory.total',
    'memory.used',
    'utilization.gpu',
    'temperature.gpu',
    'driver_version',
    'pci.bus_id',
)

# Column -> (key in the returned GPU dict, converter name).
_FIELD_KEYS = {
    'index': ('index', 'int'),
    'name': ('name', 'str'),
    'uuid': ('uuid', 'str'),
    'memory.total': ('memory_total_mib', 'int'),
    'memory.used': ('memory_used_mib', 'int'),
    'utilization.gpu': ('utilization_pct', 'int'),
    'temperature.gpu': ('temperature_c', 'int'),
    'driver_version': ('driver_version', 'str'),
    'pci.bus_id': ('pci_bus_id', 'str'),
}

DIAGNOSES = (
    'ok',
    'no_nvidia_smi',
    'driver_unreachable',
    'count_mismatch',
    'model_mismatch',
    'torch_mismatch',
    'error',
)

# Exit status of a plain `nvidia-smi` that could not talk to the kernel driver.
RC_DRIVER_UNREACHABLE = 9

# Failure texts, lower-cased substrings -> short kind.  The first ones are what
# nvidia-smi prints when NVML cannot be initialised at all (driver not loaded,
# userland/kernel versions differ after an upgrade without reboot, library
# missing, or a container that lost its device cgroup access).
_DRIVER_FAILURES = (
    ("couldn't communicate with the nvidia driver", 'communication_failure'),
    ('driver/library version mismatch', 'version_mismatch'),
    ("couldn't find libnvidia-ml.so", 'library_missing'),
    ('failed to initialize nvml', 'nvml_init_failed'),
    ('nvml: driver not loaded', 'driver_not_loaded'),
)

_DRIVER_FAILURE_HINTS = {
    'communication_failure': 'the NVIDIA kernel driver is not loaded or not reachable from here',
    'version_mismatch': 'the loaded kernel module and the NVML library differ (driver upgraded without reboot or module reload)',
    'library_missing': 'libnvidia-ml.so is not installed or not on the library path',
    'nvml_init_failed': 'NVML could not be initialised (in a container: device access lost)',
    'driver_not_loaded': 'the NVIDIA kernel driver is not loaded',
    'timeout': 'nvidia-smi hung: a GPU may have fallen off the bus (see dmesg for Xid 79)',
}

# Placeholders nvidia-smi prints instead of a value.
_PLACEHOLDER_RE = re.compile(r'^\[[^\]]*\]$')
_PLACEHOLDERS = frozenset(['', 'n/a', 'na', 'not supported', 'unknown error'])

_HEADER_RE = re.compile(
    r'NVIDIA-SMI\s+(?P<smi>\S+)\s+Driver Version:\s*(?P<driver>\S+)\s+CUDA Version:\s*(?P<cuda>[^\s|]+)',
)
_Q_DRIVER_RE = re.compile(r'^\s*Driver Version\s*:\s*(\S+)\s*$', re.MULTILINE)
_Q_CUDA_RE = re.compile(r'^\s*CUDA Version\s*:\s*(\S+)\s*$', re.MULTILINE)
_VERSION_RE = re.compile(r'^\d+(\.\d+)+$')
_NUMBER_RE = re.compile(r'^-?\d+(\.\d+)?$')

# Model matching vocabulary (upper case, after tokenising).
_NOISE_TOKENS = frozenset(['NVIDIA', 'GEFORCE', 'GRID', 'VGPU', 'TESLA', 'GPU'])
_FORM_FACTOR_RE = re.compile(r'^(SXM\d*|PCIE|NVL)$')


def _is_placeholder(value):
    stripped = value.strip()
    if _PLACEHOLDER_RE.match(stripped):
        return True
    return stripped.lower() in _PLACEHOLDERS


def parse_value(raw, kind='str'):
    """Convert one CSV cell; placeholders (C([N/A]) etc.) become None.

    Numbers may carry a unit when C(nounits) was not given (C(24564 MiB),
    C(35 %)): the first word is used.  A number that does not parse is None.
    """
    if raw is None:
        return None
    value = raw.strip()
    if _is_placeholder(value):
        return None
    if kind == 'str':
        return value
    first = value.split()[0]
    if not _NUMBER_RE.match(first):
        return None
    number = float(first)
    if kind == 'int':
        return int(number)
    return number


def query_args(fields=QUERY_FIELDS):
    """Arguments after the executable for the per-GPU CSV query."""
    return ['--query-gpu=%s' % ','.join(fields), '--format=csv,noheader,nounits']


def parse_query_csv(text, fields=QUERY_FIELDS):
    """Parse C(--query-gpu ... --format=csv,noheader,nounits) output.

    Returns C((gpus, bad_lines)): C(gpus) a list of dicts keyed like
    C(_FIELD_KEYS) in index order, C(bad_lines) every non-blank line that is
    not a GPU row (error lines such as C(Unable to determine the device handle
    for GPU 0000:41:00.0: Unknown Error) that nvidia-smi mixes into the rows
    when a GPU fell off the bus).  GPU names cannot contain commas, so a plain
    split is exact; whitespace around the values is dropped.
    """
    gpus = []
    bad_lines = []
    for line in (text or '').splitlines():
        if not line.strip():
            continue
        cells = line.split(',')
        if len(cells) != len(fields):
            bad_lines.append(line.strip())
            continue
        gpu = {}
        for field, cell in zip(fields, cells):
            key, kind = _FIELD_KEYS.get(field, (field.replace('.', '_'), 'str'))
            gpu[key] = parse_value(cell, kind)
        # A row whose index is not a number is not a GPU row (e.g. a header line
        # when `noheader` was lost, or garbage).
        if 'index' in gpu and gpu['index'] is None:
            bad_lines.append(line.strip())
            continue
        gpus.append(gpu)
    gpus.sort(key=lambda g: (g.get('index') is None, g.get('index')))
    return gpus, bad_lines


def _clean_version(value):
    if value is None:
        return None
    value = value.strip().strip('|').strip()
    if not _VERSION_RE.match(value):
        return None
    return value


def parse_header_versions(text):
    """Driver and CUDA version from the banner of a plain C(nvidia-smi).

    Returns C((driver_version, cuda_version)); either is None when absent or
    printed as C(N/A).
    """
    match = _HEADER_RE.search(text or '')
    if not match:
        return None, None
    return _clean_version(match.group('driver')), _clean_version(match.group('cuda'))


def parse_q_versions(text):
    """Driver and CUDA version from C(nvidia-smi -q) (C(CUDA Version : 12.4))."""
    text = text or ''
    driver = _Q_DRIVER_RE.search(text)
    cuda = _Q_CUDA_RE.search(text)
    return (_clean_version(driver.group(1)) if driver else None,
            _clean_version(cuda.group(1)) if cuda else None)


def classify_failure(rc, stdout, stderr=''):
    """Classify a failed C(nvidia-smi) call.

    Returns C((diagnosis, kind, first_line)) when the text is a known driver
    failure (diagnosis C(driver_unreachable)), C(('ok', 'no_devices', line))
    for C(No devices were found) (the driver answers; it sees no GPU), and
    C((None, None, None)) when nothing known was recognised.
    """
    text = '\n'.join(part for part in (stdout or '', stderr or '') if part)
    lowered = text.lower()
    first_line = None
    for line in text.splitlines():
        if line.strip():
            first_line = line.strip()
            break
    for needle, kind in _DRIVER_FAILURES:
        if needle in lowered:
            return 'driver_unreachable', kind, first_line
    if 'no devices were found' in lowered:
        return 'ok', 'no_devices', first_line
    if rc == RC_DRIVER_UNREACHABLE:
        return 'driver_unreachable', 'communication_failure', first_line
    return None, None, None


# What nvidia-smi prints in place of the row of a GPU that fell off the bus (Xid 79).
_LOST_GPU_TEXT = 'unable to determine the device handle'


def lost_gpu_lines(bad_lines):
    """The query lines that stand for a GPU nvidia-smi knows of but cannot reach."""
    return [line for line in (bad_lines or []) if _LOST_GPU_TEXT in line.lower()]


def driver_failure_hint(kind):
    """One-line human explanation of a failure kind from classify_failure."""
    return _DRIVER_FAILURE_HINTS.get(kind, 'nvidia-smi failed')


def model_tokens(text):
    """Normalise a GPU model string into comparable tokens.

    Upper-cases, drops a C((vGPU)) marker and every non-alphanumeric separator
    (hyphens, spaces, underscores, slashes), then drops the noise words
    C(NVIDIA), C(GeForce), C(GRID), C(vGPU), C(Tesla), C(GPU).
    C(NVIDIA A100-SXM4-80GB) -> C([A100, SXM4, 80GB]);
    C(A100D-20C (vGPU)) -> C([A100D, 20C]).
    """
    text = (text or '').upper()
    text = re.sub(r'\(\s*VGPU\s*\)', ' ', text)
    tokens = [t for t in re.split(r'[^A-Z0-9]+', text) if t]
    return [t for t in tokens if t not in _NOISE_TOKENS]


def _is_form_factor(token):
    return bool(_FORM_FACTOR_RE.match(token))


def _form_factor_agrees(expected, reported):
    # SXM matches SXM4/SXM5; SXM4 only matches SXM4 (or a bare SXM).
    return reported.startswith(expected) or expected.startswith(reported)


def _token_found(token, reported_tokens):
    if token in reported_tokens:
        return True
    # A joined inventory token (RTX4090) may be split in the name (RTX 4090).
    for start in range(len(reported_tokens)):
        joined = ''
        for part in reported_tokens[start:]:
            joined += part
            if joined == token:
                return True
            if len(joined) >= len(token):
                break
    return False


def match_model(expected, reported):
    """Does the reported GPU name satisfy the inventory's model string?

    Rule: both strings go through model_tokens().  Every remaining inventory
    token must be a whole token of the reported name (C(A40) does not match
    C(RTX A4000), C(L40) does not match C(L40S)), except form-factor tokens
    (C(SXM*), C(PCIe), C(NVL)): when the name carries a form factor too, the
    two must agree (C(SXM) accepts C(SXM4)/C(SXM5), rejects C(PCIe)); when the
    name carries none (C(NVIDIA H100 80GB HBM3) is the SXM part) the inventory
    form factor cannot be checked and is advisory only.

    Returns C((matches, note)); C(note) explains a miss or an unchecked form
    factor, else None.  An empty expectation matches anything.
    """
    expected_tokens = model_tokens(expected)
    reported_tokens = model_tokens(reported)
    if not expected_tokens:
        return True, None
    reported_forms = [t for t in reported_tokens if _is_form_factor(t)]
    missing = []
    advisory = []
    for token in expected_tokens:
        if _is_form_factor(token):
            if not reported_forms:
                advisory.append(token)
            elif not any(_form_factor_agrees(token, form) for form in reported_forms):
                missing.append(token)
            continue
        if not _token_found(token, reported_tokens):
            missing.append(token)
    if missing:
        return False, "%r does not match %r: missing %s" % (expected, reported, ', '.join(missing))
    if advisory:
        return True, ("%r matches %r; form factor %s not shown in the name, not checked"
                      % (expected, reported, ', '.join(advisory)))
    return True, None


TORCH_PROBE = (
    "import json, sys\n"
    "out = {'python': sys.executable}\n"
    "try:\n"
    "    import torch\n"
    "except Exception as exc:\n"
    "    out['error'] = '%s: %s' % (type(exc).__name__, exc)\n"
    "else:\n"
    "    out['version'] = getattr(torch, '__version__', None)\n"
    "    out['cuda_version'] = getattr(getattr(torch, 'version', None), 'cuda', None)\n"
    "    try:\n"
    "        out['available'] = bool(torch.cuda.is_available())\n"
    "        out['device_count'] = int(torch.cuda.device_count()) if out['available'] else 0\n"
    "        out['names'] = [torch.cuda.get_device_name(i) for i in range(out['device_count'])]\n"
    "    except Exception as exc:\n"
    "        out['error'] = '%s: %s' % (type(exc).__name__, exc)\n"
    "print(json.dumps(out))\n"
)


def parse_torch_probe(rc, stdout, stderr=''):
    """Turn the TORCH_PROBE run into a dict with a fixed set of keys."""
    result = {
        'python': None,
        'version': None,
        'cuda_version': None,
        'available': False,
        'device_count': 0,
        'names': [],
        'error': None,
    }
    payload = None
    for line in reversed((stdout or '').splitlines()):
        line = line.strip()
        if line.startswith('{'):
            try:
                payload = json.loads(line)
            except ValueError:
                payload = None
            break
    if not isinstance(payload, dict):
        tail = (stderr or stdout or '').strip().splitlines()
        result['error'] = 'torch probe failed (rc=%s): %s' % (rc, tail[-1] if tail else 'no output')
        return result
    for key in result:
        if key in payload and payload[key] is not None:
            result[key] = payload[key]
    if rc != 0 and not result['error']:
        result['error'] = 'torch probe exited with rc=%s' % rc
    return result


def _expected_count(value):
    """None or a positive int: 0 and None both mean the count is not compared."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError('expected_count must be a whole number, got %r' % (value,))
    if value < 0:
        raise ValueError('expected_count must be 0 or more, got %d' % value)
    return value or None


def diagnose(present, driver_ok, gpus, expected_count=None, expected_model=None, torch=None,
             bad_lines=None, driver_failure=None, error=None):
    """Pick the single diagnosis and build the summary fields.

    Precedence: C(no_nvidia_smi) > C(driver_unreachable) > C(error) (the
    query failed) > C(count_mismatch) > C(error) (rows that are not GPUs and
    not a lost GPU, with the count otherwise fine) > C(model_mismatch) >
    C(torch_mismatch) > C(ok).

    C(count_mismatch) is the verdict whenever the driver answers and the node
    has fewer usable GPUs than it should: a count different from
    C(expected_count); zero GPUs (C(No devices were found)), expected count or
    not (a GPU check on a node without GPUs is a failed check); and a GPU that
    fell off the bus (an C(Unable to determine the device handle) line), even
    without an expected count.  C(expected_count) 0 or None: not compared.

    Returns a dict with C(diagnosis), C(msg), C(count), C(count_matches),
    C(model_matches), C(model_note).
    """
    gpus = gpus or []
    bad_lines = bad_lines or []
    expected_count = _expected_count(expected_count)
    count = len(gpus)
    lost = lost_gpu_lines(bad_lines)
    out = {
        'count': count,
        'count_matches': None,
        'model_matches': None,
        'model_note': None,
    }
    if present and driver_ok:
        if expected_count is not None:
            out['count_matches'] = count == expected_count
        elif count == 0:
            out['count_matches'] = False
        if expected_model:
            notes = []
            matches = bool(gpus)
            for gpu in gpus:
                ok, note = match_model(expected_model, gpu.get('name') or '')
                matches = matches and ok
                if note and note not in notes:
                    notes.append(note)
            if not gpus:
                notes.append('no GPU reported to compare with %r' % expected_model)
            out['model_matches'] = matches
            out['model_note'] = '; '.join(notes) if notes else None

    names = sorted(set(g.get('name') or '?' for g in gpus))
    if not present:
        out['diagnosis'] = 'no_nvidia_smi'
        out['msg'] = 'nvidia-smi not found: no NVIDIA driver userland on this host'
    elif not driver_ok:
        out['diagnosis'] = 'driver_unreachable'
        out['msg'] = 'nvidia-smi cannot reach the NVIDIA driver: %s' % (driver_failure or 'unknown failure')
    elif error:
        out['diagnosis'] = 'error'
        out['msg'] = error
    elif out['count_matches'] is False or lost:
        out['diagnosis'] = 'count_mismatch'
        if out['count_matches'] is False and expected_count is not None:
            out['msg'] = 'nvidia-smi reports %d GPU(s), the inventory expects %d' % (count, expected_count)
        elif lost:
            out['msg'] = 'nvidia-smi reports %d GPU(s) and cannot reach %d more' % (count, len(lost))
        else:
            out['msg'] = 'nvidia-smi reports no GPU'
        if bad_lines:
            out['msg'] += ' (nvidia-smi also said: %s)' % bad_lines[0]
    elif bad_lines:
        out['diagnosis'] = 'error'
        out['msg'] = 'nvidia-smi reported errors: %s' % '; '.join(bad_lines)
    elif out['model_matches'] is False:
        out['diagnosis'] = 'model_mismatch'
        out['msg'] = 'GPU model mismatch: %s' % out['model_note']
    elif torch is not None and (torch.get('error') or not torch.get('available')
                                or torch.get('device_count') != count):
        out['diagnosis'] = 'torch_mismatch'
        if torch.get('error'):
            out['msg'] = 'torch check failed: %s' % torch['error']
        elif not torch.get('available'):
            out['msg'] = 'torch.cuda.is_available() is False although nvidia-smi reports %d GPU(s)' % count
        else:
            out['msg'] = 'torch sees %s GPU(s), nvidia-smi reports %d' % (torch.get('device_count'), count)
    else:
        out['diagnosis'] = 'ok'
        out['msg'] = '%d x %s' % (count, ', '.join(names)) if gpus else 'no GPU'
        if out['model_note']:
            out['msg'] += ' (%s)' % out['model_note']
    return out


# --------------------------------------------------------------------------- running nvidia-smi on the node

CONTAINER_DIRS = ['/usr/bin', '/usr/local/nvidia/bin']
DEFAULT_TIMEOUT = 30
# The bounded runner every probe of this collection uses (kept under these names for callers).
TIMED_OUT_RC = process.TIMED_OUT_RC
REAP_GRACE = process.REAP_GRACE
run_bounded = process.run_bounded


class Deadline(object):
    """One total time budget shared by every command of a check."""

    def __init__(self, seconds, clock=time.monotonic):
        self.seconds = seconds
        self.clock = clock
        self.end = clock() + seconds

    def share(self):
        """Seconds the next command may run, REAP_GRACE kept back; 0 when the budget is spent."""
        return max(0.0, self.end - self.clock() - REAP_GRACE)


def find_executable(module, executable):
    """Absolute path of C(executable): a path as given, a bare name on PATH or in the container driver dirs."""
    if os.sep in executable:
        if os.path.isfile(executable) and os.access(executable, os.X_OK):
            return executable
        return None
    return module.get_bin_path(executable, opt_dirs=CONTAINER_DIRS)


def _timeout_seconds(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError('timeout must be a number of seconds above 0, got %r' % (value,))
    return value


def _first_line(text):
    text = (text or '').strip()
    return text.splitlines()[0] if text else 'no output'


def check_gpus(which, executable='nvidia-smi', expected_count=None, expected_model=None, check_torch=False,
               python='python3', timeout=DEFAULT_TIMEOUT, read_versions=True, run=run_bounded,
               clock=time.monotonic):
    """The GPU check: query, classify, compare with the inventory, diagnose.

    Every command it runs (the C(--query-gpu) call, the torch probe when
    C(check_torch), the version banner and C(-q) when C(read_versions)) shares
    ONE deadline of C(timeout) seconds, so the whole check returns within
    about C(timeout) seconds even when nvidia-smi hangs.  The query and the
    torch probe come first (they decide the verdict); the versions only get
    what is left and are null when nothing is.

    :arg which: C(which(executable) -> absolute path or None).
    :arg run: C(run(argv, seconds) -> (rc, stdout, stderr, timed_out)), see :func:`run_bounded`.
    :returns: the facts C(nvidia_gpu_info) returns: C(present), C(executable),
        C(driver_ok), C(driver_error), C(driver_failure_kind), C(driver_version),
        C(cuda_version), C(gpus), C(query_errors), C(torch), and the fields of
        :func:`diagnose` (C(diagnosis), C(msg), C(count), ...).
    :raises ValueError: a negative C(expected_count) or a C(timeout) that is not above 0.
    """
    timeout = _timeout_seconds(timeout)
    expected_count = _expected_count(expected_count)
    deadline = Deadline(timeout, clock)
    result = {
        'present': False,
        'executable': None,
        'driver_ok': False,
        'driver_error': None,
        'driver_failure_kind': None,
        'driver_version': None,
        'cuda_version': None,
        'gpus': [],
        'query_errors': [],
        'torch': None,
    }
    gpus, bad_lines, error = [], [], None
    smi = which(executable)
    if smi:
        result['present'] = True
        result['executable'] = smi
        rc, out, err, timed_out = run([smi] + query_args(), deadline.share())
        if timed_out:
            result['driver_error'] = 'nvidia-smi did not answer within %g s' % timeout
            result['driver_failure_kind'] = 'timeout'
        else:
            failure, kind, first_line = classify_failure(rc, out, err)
            if failure == 'driver_unreachable':
                result['driver_error'] = first_line
                result['driver_failure_kind'] = kind
            else:
                result['driver_ok'] = True
                if kind != 'no_devices':
                    gpus, bad_lines = parse_query_csv(out)
                    if rc != 0 and not gpus and not lost_gpu_lines(bad_lines):
                        error = 'nvidia-smi --query-gpu failed (rc=%d): %s' % (rc, _first_line(err or out))
                    elif not gpus and bad_lines and not lost_gpu_lines(bad_lines):
                        error = 'cannot parse nvidia-smi --query-gpu output: %s' % bad_lines[0]
    versions = sorted(set(g.pop('driver_version', None) or '' for g in gpus) - set(['']))
    result['driver_version'] = versions[0] if versions else None
    if result['driver_ok'] and gpus and check_torch:
        python = os.path.expanduser(python or 'python3')
        rc, out, err, timed_out = run([python, '-c', TORCH_PROBE], deadline.share())
        if timed_out:
            result['torch'] = parse_torch_probe(rc, '', 'timed out: the GPU check has %g s in all' % timeout)
        else:
            result['torch'] = parse_torch_probe(rc, out, err)
        result['torch']['python'] = result['torch']['python'] or python
    if result['driver_ok'] and read_versions:
        driver, cuda = _read_versions(run, smi, deadline)
        result['driver_version'] = result['driver_version'] or driver
        result['cuda_version'] = cuda
    result['gpus'] = gpus
    result['query_errors'] = bad_lines
    failure_text = None
    if result['present'] and not result['driver_ok']:
        failure_text = '%s (%s)' % (result['driver_error'], driver_failure_hint(result['driver_failure_kind']))
    result.update(diagnose(result['present'], result['driver_ok'], gpus, expected_count, expected_model,
                           torch=result['torch'], bad_lines=bad_lines, driver_failure=failure_text, error=error))
    return result


def _read_versions(run, smi, deadline):
    """Driver and CUDA version from the plain banner, else from C(-q); (None, None) once the deadline is spent."""
    driver, cuda = None, None
    if deadline.share() > 0:
        dummy_rc, out, dummy_err, timed_out = run([smi], deadline.share())
        if not timed_out:
            driver, cuda = parse_header_versions(out)
    if cuda is None and deadline.share() > 0:
        dummy_rc, out, dummy_err, timed_out = run([smi, '-q'], deadline.share())
        if not timed_out:
            q_driver, cuda = parse_q_versions(out)
            driver = driver or q_driver
    return driver, cuda
