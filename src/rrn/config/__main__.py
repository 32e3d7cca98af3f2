"""``python -m rrn.config``: print the defaults as a YAML template."""

import sys

from rrn.config.schema import TrainConfig

sys.stdout.write(TrainConfig().to_yaml())
