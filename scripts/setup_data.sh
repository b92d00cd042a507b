#!/usr/bin/env bash
# Report which datasets stn-bench can read on this machine, and install the one that comes
# as a Debian package (Fashion-MNIST) when asked. Downloads nothing else: the other sets
# are files you place yourself, as each message says.
#
#   scripts/setup_data.sh            # report only
#   scripts/setup_data.sh --install  # also apt-get install dataset-fashion-mnist (needs root)
#   DATA_ROOT=/data scripts/setup_data.sh   # look for cifar10, svhn, ... under /data/<name>
set -euo pipefail

if [[ "${1:-}" == "--install" ]]; then
    if ! dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then
        apt-get update && apt-get install -y dataset-fashion-mnist
    fi
fi

cd "$(dirname "$0")/.."
DATA_ROOT="${DATA_ROOT:-data}" python - <<'PY'
import os
from pathlib import Path

from stn.data.catalog import LOADERS, load_dataset
from stn.data.embedded import DatasetNotFoundError
from stn.data.files import DatasetFormatError

data_root = Path(os.environ["DATA_ROOT"])
for name in LOADERS:
    # digits and fashion_mnist know where to look; the rest are read from DATA_ROOT/<name>.
    root = None if name in ("digits", "fashion_mnist") else data_root / name
    if name == "idx":
        root = data_root / "mnist"
    try:
        train, test = load_dataset(name, root)
    except (DatasetNotFoundError, DatasetFormatError) as err:
        print(f"{name:14s} not ready: {err}")
        continue
    sizes = f"{len(train)} train" + ("" if test is None else f", {len(test)} test")
    print(f"{name:14s} ok: {sizes}, images {train.images.shape[1:]}")
PY
