"""The enos provider plugin, run by the Pulumi CLI from a checkout (``pulumi package add <this directory>``,
see PulumiPlugin.yaml): the same as the ``pulumi-resource-enos`` command."""

import sys

from enos_pulumi.plugin import main

if __name__ == "__main__":
    sys.exit(main())
