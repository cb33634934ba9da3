import sys

from xenboot.cli import main

sys.exit(main())
