#!/usr/bin/env bash
# Rebuild a folder holding transformers' own common test files for the INSTALLED transformers version:
#   <target>/tests/...   from the transformers PyPI sdist (test_modeling_common.py, test_configuration_common.py, ...)
#   + files the sdist lacks (tests/generation/test_utils.py, tests/exporters/test_export.py,
#     tests/utils/test_configuration_utils.py, utils/test_module/) copied from a local folder of GitHub copies
#     (see its SOURCES.txt for repository and commit; GitHub is not reachable from every machine).
#
# Usage: get_tests.sh [TARGET_DIR]           (default /tmp/tftests)
# Env:   PYTHON            python of the venv whose transformers version is wanted (default: .venv/bin/python
#                          if present, else python3)
#        TFTESTS_GITHUB_DIR folder with the GitHub copies (default /tmp/tftests_github)
# Then:  TRANSFORMERS_TESTS_DIR=TARGET_DIR python -m pytest tests/transformers_suite -p no:cacheprovider -q
set -euo pipefail

TARGET="${1:-/tmp/tftests}"
GITHUB_DIR="${TFTESTS_GITHUB_DIR:-/tmp/tftests_github}"
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

# an absolute path: the script changes directory before its last check
case "$PYTHON" in */*) PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")" ;; esac
VERSION="$("$PYTHON" -c 'import transformers; print(transformers.__version__)')"
echo "transformers version: $VERSION (from $PYTHON)"

if [ ! -f "$GITHUB_DIR/tests/generation/test_utils.py" ]; then
    echo "error: $GITHUB_DIR/tests/generation/test_utils.py is missing (set TFTESTS_GITHUB_DIR)" >&2
    exit 1
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" -m pip download --quiet --no-deps --no-binary :all: --dest "$WORK" "transformers==$VERSION"
SDIST="$(ls "$WORK"/transformers-*.tar.gz)"
tar -xzf "$SDIST" -C "$WORK"
SRC="$WORK/transformers-$VERSION"

rm -rf "$TARGET"
mkdir -p "$TARGET"
cp -r "$SRC/tests" "$TARGET/tests"
# GitHub copies: tests/ sub-packages and helpers the sdist does not ship (never overwrite sdist files).
(cd "$GITHUB_DIR" && find tests utils -type f -name '*.py') | while read -r path; do
    if [ -e "$TARGET/$path" ]; then
        echo "keeping sdist version of $path"
    else
        mkdir -p "$TARGET/$(dirname "$path")"
        cp "$GITHUB_DIR/$path" "$TARGET/$path"
    fi
done
cp "$GITHUB_DIR/SOURCES.txt" "$TARGET/SOURCES-github.txt" 2>/dev/null || true

missing=""
for module in parameterized httpx; do
    "$PYTHON" -c "import $module" 2>/dev/null || missing="$missing $module"
done
if [ -n "$missing" ]; then
    echo "test-only dependencies missing:$missing  ->  $PYTHON -m pip install$missing"
fi
(cd "$TARGET" && "$PYTHON" -c "import tests.test_modeling_common, tests.generation.test_utils, tests.test_configuration_common") \
    && echo "ok: $TARGET (TRANSFORMERS_TESTS_DIR=$TARGET)"
