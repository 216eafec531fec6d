#!/bin/bash
# Build the native modules of the synthcore checkout in the current directory
# into its python/synthcore (gitignored), incrementally (build dir ./build).
# Serialised machine-wide by a lock: the machine has 2 cores, never build twice at once.
# Usage: cd <checkout> && bash tools/devbuild.sh [--no-cuda]; then PYTHONPATH=python python -m pytest
set -euo pipefail
root=$(pwd)
[ -f "$root/pyproject.toml" ] || { echo "run from a synthcore checkout" >&2; exit 2; }
extra=(-C cmake.define.SYNTHCORE_CUDA=AUTO)
if [ "${1:-}" = "--no-cuda" ]; then extra=(-C cmake.define.SYNTHCORE_CUDA=OFF); fi
whl=$(mktemp -d)
exec 9>/tmp/synthcore-build.lock
flock 9
pip wheel --no-build-isolation --no-deps -q -C build-dir=build "${extra[@]}" -w "$whl" . 
flock -u 9
rm -f "$root"/python/synthcore/_core*.so "$root"/python/synthcore/_cuda*.so
(cd "$whl" && python -c "
import zipfile,glob,sys
z=zipfile.ZipFile(glob.glob('*.whl')[0])
for n in z.namelist():
    if n.startswith('synthcore/_') and n.endswith('.so'):
        open(sys.argv[1]+'/'+n.split('/')[-1],'wb').write(z.read(n)); print('built', n)
" "$root/python/synthcore")
rm -rf "$whl"
