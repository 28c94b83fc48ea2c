"""`python -m storaged.cli`: storagectl."""
import sys

from .main import main

sys.exit(main())
