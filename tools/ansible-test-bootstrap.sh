#!/usr/bin/env bash
# ansible-test bootstraps pip in its venvs from a get-pip script it downloads from a
# host this machine cannot reach. Give it a stand-in in its cache: ensurepip, then
# `pip install` with the arguments it was given (minus get-pip-only flags).
set -euo pipefail
python=${1:-.venv/bin/python}
src=$("$python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
pip_version=$(grep -oE "pip='[0-9.]+'" "$src/_internal/python_requirements.py" | head -n 1 | cut -d"'" -f2)
if [ -z "$pip_version" ]; then
    echo "cannot find the pip version ansible-test bootstraps" >&2
    exit 1
fi
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
cat >"$cache/get_pip_${pip_version//./_}.py" <<'PY'
"""Stand-in for get-pip.py written by tools/ansible-test-bootstrap.sh."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
PY
