"""``python -m mos_ros.evaluate widerface|aflw2000|landmarks|real|consistency`` (``mos eval``)."""
import sys

from mos_ros.evaluate.report import main

sys.exit(main())
