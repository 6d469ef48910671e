#!/usr/bin/env bash
# Tools of the benchmark: curl, ApacheBench and wrk from Debian, copyparty from PyPI in its
# own environment (bench/.env), so it never mixes with Satchel's.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
need=()
command -v curl >/dev/null || need+=(curl)
command -v ab >/dev/null || need+=(apache2-utils)
command -v wrk >/dev/null || need+=(wrk)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -x "$here/.env/bin/copyparty" ]; then
  python3 -m venv "$here/.env"
  "$here/.env/bin/pip" install --quiet "copyparty==1.20.26"
fi
