"""`python -m modelplane.operator`."""

import sys

from modelplane.operator.runner import main

sys.exit(main())
