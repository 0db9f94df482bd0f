"""``python -m bench.baselines.celery``: see :mod:`bench.baselines.celery.side_by_side`."""

import sys

from bench.baselines.celery.side_by_side import main

sys.exit(main())
