"""``python -m benchmarks``: every benchmark and one summary (see ``run.py``)."""

import os
import sys

# The scripts import each other by plain name, as when run alone (python benchmarks/bench_x.py).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run

sys.exit(run.main())
