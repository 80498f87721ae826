#!/usr/bin/env bash
# Re-resolve requirements-lock.txt: install what requirements.txt and requirements-test.txt
# allow today into a throwaway virtual environment, run the test suite there, and write the
# exact versions it used. Commit the new lock only if the tests passed.
#   bash scripts/refresh_lock.sh            (on CPython 3.11, Linux x86-64: what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=$(mktemp -d)/venv
trap 'rm -rf "$(dirname "$VENV")"' EXIT
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r requirements.txt -r requirements-test.txt
"$VENV/bin/python" -m pip install -q --no-deps -e .
TF_CPP_MIN_LOG_LEVEL=2 "$VENV/bin/python" -m pytest -q tests
{
    echo "# Exact versions the test suite passed with (CPython $("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])'), $(uname -s) $(uname -m), $(date -u +%Y-%m-%d))."
    echo "# Used as constraints (pip install -c) by .ci/run and scripts/quickstart.sh; pyproject.toml"
    echo "# keeps the ranges for library users. Refresh: bash scripts/refresh_lock.sh"
    "$VENV/bin/python" -m pip freeze --exclude-editable | grep -v '^t2i[= @]'
} > requirements-lock.txt.new
mv requirements-lock.txt.new requirements-lock.txt
echo "wrote requirements-lock.txt ($(grep -vc '^#' requirements-lock.txt) packages)"
