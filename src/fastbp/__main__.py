import sys

from .tutorial.cli import main

sys.exit(main())
