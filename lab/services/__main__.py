import sys

from lab.services.stack import main

sys.exit(main())
