#!/usr/bin/env bash
# The benchmark's baselines, each in its own virtual environment (never the project's .venv):
#   $KSERVE_VENV (default /tmp/kserve-venv): kserve from PyPI, KServe's Python ModelServer
#   $FLASK_VENV  (default /tmp/flask-venv):  flask and gunicorn (the seed's app runs on Flask's
#                                            development server and, as it is deployed, on gunicorn)
# Both need torch to wrap the same module. PyPI's torch is about 3 GB with its CUDA libraries, so
# instead of a second copy each venv gets a .pth line that appends the project's site-packages
# AFTER its own: the baseline's own dependencies (fastapi, uvicorn, numpy, ...) always win, and
# only what it lacks (torch, safetensors) comes from the project's environment.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-python3}
KSERVE_VENV=${KSERVE_VENV:-/tmp/kserve-venv}
FLASK_VENV=${FLASK_VENV:-/tmp/flask-venv}
KSERVE_VERSION=${KSERVE_VERSION:-0.21.0}
FLASK_VERSION=${FLASK_VERSION:-3.1.3}
GUNICORN_VERSION=${GUNICORN_VERSION:-27.0.1}
PROJECT_SITE=$("$REPO/.venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")

make_venv() {  # make_venv DIR PACKAGE...
  local dir=$1; shift
  if [ ! -x "$dir/bin/python" ]; then
    "$PYTHON" -m venv "$dir"
  fi
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
  local site
  site=$("$dir/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  echo "$PROJECT_SITE" > "$site/zz-lmaas-torch.pth"
  "$dir/bin/python" -c "import torch, safetensors; print('$dir: torch', torch.__version__)"
}

make_venv "$KSERVE_VENV" "kserve==$KSERVE_VERSION"
make_venv "$FLASK_VENV" "flask==$FLASK_VERSION" "gunicorn==$GUNICORN_VERSION" numpy
"$KSERVE_VENV/bin/python" -c "import kserve; from importlib.metadata import version; print('kserve', version('kserve'))"
"$FLASK_VENV/bin/python" -c "from importlib.metadata import version; print('flask', version('flask'), 'gunicorn', version('gunicorn'))"
