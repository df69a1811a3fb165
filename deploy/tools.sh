#!/usr/bin/env bash
# Make (once) the venv of the manifest and Dockerfile checkers and print its bin/ folder:
# kubernetes-validate (Kubernetes' own schemas, offline), checkov (policy checks, run with
# --skip-download), hadolint (the Dockerfile linter, shipped in its wheel).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
reqs="$here/tools-requirements.txt"
venv="${CITYEDGE_DEPLOY_TOOLS:-$HOME/.cache/cityedge/deploy-tools-$(sha256sum "$reqs" | cut -c1-12)}"
if [ ! -x "$venv/bin/checkov" ] || [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/hadolint" ]; then
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv" >/dev/null
  "$venv/bin/pip" install -q -r "$reqs" >"$venv.log" 2>&1 || { echo "deploy tools: install failed, see $venv.log" >&2; exit 1; }
fi
echo "$venv/bin"
