#!/usr/bin/env bash
# Install kubectl-mesh into its own virtual environment and put
# `kubectl-mesh` and `kubectl_complete-mesh` on PATH, so that
# `kubectl mesh ...` works.
#
#   ./install.sh [--prefix DIR] [--dev] [--python PYTHON]
#   ./install.sh --uninstall [--prefix DIR]
#
# --prefix  where bin/ links go (default /usr/local as root, else ~/.local)
# --dev     also install the test extras, editable, for running the tests
#
# The plain install copies the package into the environment (an editable
# install's import hook costs every run ~17 ms) and compiles its byte-code
# now, even where PYTHONDONTWRITEBYTECODE is set (without .pyc every run
# compiles its modules again). --dev installs editable in setuptools' compat
# mode (a plain path entry, no import hook).
# Running it again is safe: it updates the environment and the links.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
manifest="$venv/.kubectl-mesh-installed"
tools=(kubectl-mesh kubectl_complete-mesh)

if [ "$(id -u)" = 0 ]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
dev=0
uninstall=0
python=""

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --dev) dev=1; shift ;;
    --python) [ $# -ge 2 ] || die "--python needs an interpreter"; python="$2"; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done
bindir="$prefix/bin"

if [ "$uninstall" = 1 ]; then
  # Remove exactly what an install recorded: links that still point into our venv, then the venv.
  if [ -f "$manifest" ]; then
    while IFS= read -r link; do
      if [ -L "$link" ] && [ "$(readlink "$link")" = "$venv/bin/$(basename "$link")" ]; then
        rm -f "$link" && echo "removed $link"
      fi
    done < "$manifest"
  else
    for tool in "${tools[@]}"; do
      link="$bindir/$tool"
      if [ -L "$link" ] && [ "$(readlink "$link")" = "$venv/bin/$tool" ]; then
        rm -f "$link" && echo "removed $link"
      fi
    done
  fi
  if [ -d "$venv" ]; then rm -rf "$venv" && echo "removed $venv"; fi
  echo "kubectl-mesh uninstalled"
  exit 0
fi

# A Python of at least 3.11.
if [ -z "$python" ]; then
  for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      python="$candidate"; break
    fi
  done
fi
[ -n "$python" ] || die "Python 3.11 or newer is needed (none found as python3, python3.11-3.13); use --python"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$python is older than 3.11"

# Refuse before changing anything if a link would replace someone else's file.
for tool in "${tools[@]}"; do
  if [ -e "$bindir/$tool" ] && [ ! -L "$bindir/$tool" ]; then
    die "$bindir/$tool exists and is not a link; remove it or use --prefix"
  fi
done

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
  echo "created virtual environment $venv"
fi
if [ "$dev" = 1 ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --config-settings editable_mode=compat -e "$here[test]"
  echo "installed kubectl-mesh (editable) with the test extras into $venv"
else
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$here"
  echo "installed kubectl-mesh into $venv"
fi
# Launchers of our own in place of pip's: its wrapper imports re (more instructions than
# starting Python itself) only to tidy sys.argv[0] on Windows.
for entry in "kubectl-mesh:main" "kubectl_complete-mesh:complete_main"; do
  cat > "$venv/bin/${entry%%:*}" <<LAUNCHER
#!$venv/bin/python
import sys
from kubectl_mesh.entry import ${entry#*:}
sys.exit(${entry#*:}())
LAUNCHER
  chmod 755 "$venv/bin/${entry%%:*}"
done
# Byte-code now, once: what runs the plugin (and, with --dev, the tests) is compiled.
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
targets=("$site")
if [ "$dev" = 1 ]; then targets+=("$here/kubectl_mesh" "$here/tests"); fi
env -u PYTHONDONTWRITEBYTECODE "$venv/bin/python" -m compileall -q -j 0 "${targets[@]}" >/dev/null ||
  echo "install.sh: note: byte-code compilation failed; the plugin works, starting a little slower" >&2

mkdir -p "$bindir"
: > "$manifest"
for tool in "${tools[@]}"; do
  link="$bindir/$tool"
  ln -sfn "$venv/bin/$tool" "$link"
  echo "$link" >> "$manifest"
  echo "linked $link -> $venv/bin/$tool"
done

case ":$PATH:" in
  *":$bindir:"*) echo "ready: run 'kubectl mesh --help'" ;;
  *) echo "note: $bindir is not on your PATH; add it, e.g.:"
     echo "  export PATH=\"$bindir:\$PATH\""
     echo "then run 'kubectl mesh --help'" ;;
esac
