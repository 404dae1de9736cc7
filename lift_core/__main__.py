import sys

from lift_core.cli import main

sys.exit(main())
