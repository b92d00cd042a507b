"""Moved: ``stn-bench options [NAME]`` (``python -m stn_bench options``) lists options."""

import sys

if __name__ == "__main__":
    args = " ".join(sys.argv[1:])
    print(f"error: scripts.options moved; run: stn-bench options {args}".rstrip()
          + "  (or python -m stn_bench options)", file=sys.stderr)  # fmt: skip
    sys.exit(2)
