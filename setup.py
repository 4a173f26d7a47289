"""pip install of the ROS-free core of rfnet_ros; metadata in setup.cfg."""
import xml.etree.ElementTree as ET
from pathlib import Path

from setuptools import setup

# One version for both builds: the one in package.xml.
VERSION = ET.parse(Path(__file__).resolve().parent / 'package.xml').findtext('version')

setup(version=VERSION)
