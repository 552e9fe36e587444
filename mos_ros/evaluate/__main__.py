"""``python -m mos_ros.evaluate widerface|aflw2000|landmarks|real ...`` (same as ``mos eval``)."""
import sys

from mos_ros.evaluate.report import main

sys.exit(main())
