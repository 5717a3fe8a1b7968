import sys

from loopanimate.cli import main

sys.exit(main())
