"""`python -m aos_py` runs the aos shell."""

import sys

from aos_py.repl.main import main

sys.exit(main())
