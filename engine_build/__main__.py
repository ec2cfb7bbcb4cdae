import sys

from engine_build.build import main

sys.exit(main())
