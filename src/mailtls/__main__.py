import sys

from mailtls.cli import main

sys.exit(main())
