import sys

from descentlab.cli import main

sys.exit(main())
