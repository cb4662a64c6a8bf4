"""``python -m enos_pulumi.plugin``: the same as the ``pulumi-resource-enos`` command."""

import sys

from .server import main

if __name__ == "__main__":
    sys.exit(main())
