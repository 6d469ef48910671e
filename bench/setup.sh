#!/usr/bin/env bash
# The tools of `make bench` (bench/run.py runs this when one is missing):
#   curl, ApacheBench (ab, Debian apache2-utils) and wrk, from Debian with apt-get;
#   copyparty from PyPI into an environment of its own, bench/.env, never mixed with Satchel's.
set -euo pipefail

COPYPARTY_VERSION=1.20.26
here="$(cd "$(dirname "$0")" && pwd)"

packages=()
command -v curl >/dev/null || packages+=(curl)
command -v ab >/dev/null || packages+=(apache2-utils)
command -v wrk >/dev/null || packages+=(wrk)
if ((${#packages[@]})); then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  echo "installing ${packages[*]} with apt-get"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null
fi

if ! "$here/.env/bin/copyparty" --version 2>/dev/null | grep -q "v$COPYPARTY_VERSION "; then
  echo "installing copyparty $COPYPARTY_VERSION into bench/.env"
  rm -rf "$here/.env"
  python3 -m venv "$here/.env"
  "$here/.env/bin/pip" install --quiet --disable-pip-version-check "copyparty==$COPYPARTY_VERSION"
fi
