#!/usr/bin/env bash
# Creates (or completes) the two Python environments from the pinned lock files, and
# web/node_modules (the browser libraries the api serves) from web/package-lock.json.
# Safe to run again: it does nothing when the lock files did not change.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {  # find_python 3.11 -> a path to that interpreter
  local version=$1 candidate
  for candidate in "python$version" "$(command -v pyenv >/dev/null && pyenv prefix "$version" 2>/dev/null)/bin/python$version" \
                   /root/.pyenv/versions/"$version"*/bin/python"$version" /usr/bin/python"$version" /usr/local/bin/python"$version"; do
    if [ -n "$candidate" ] && "$candidate" -c 'import sys' >/dev/null 2>&1; then
      command -v "$candidate" 2>/dev/null || echo "$candidate"; return 0
    fi
  done
  echo "Python $version was not found; install it (the main environment needs 3.11, Rasa's 3.10)" >&2
  return 1
}

make_env() {  # make_env DIR PYTHON LOCKFILE [editable]
  local dir=$1 python=$2 lock=$3 editable=${4:-}
  local stamp="$dir/.lock-sha256" want
  want=$(sha256sum "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "setting up $dir from $lock ..."
  [ -x "$dir/bin/python" ] || "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --upgrade pip
  "$dir/bin/python" -m pip install --quiet -r "$lock"
  if [ -n "$editable" ]; then
    "$dir/bin/python" -m pip install --quiet --no-deps -e .
  fi
  echo "$want" > "$stamp"
}

npm_ci() {  # npm_ci DIR: DIR/node_modules from DIR/package-lock.json
  local dir=$1 stamp="$1/node_modules/.lock-sha256" want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    # Only the Segment analytics.js demo page and its browser test need these.
    echo "npm was not found: $dir/node_modules is not installed (apt-get install -y npm)" >&2
    return 0
  fi
  echo "setting up $dir/node_modules from $dir/package-lock.json ..."
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
}

make_env .venv "$(find_python 3.11)" requirements/main.lock editable
make_env .venv-rasa "$(find_python 3.10)" requirements/rasa.lock
npm_ci web
