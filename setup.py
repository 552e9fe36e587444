"""pip install of the mos_ros Python package (core, model, backends, CLI, nodes)."""
from setuptools import setup

setup()
