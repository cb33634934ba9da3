"""Makes the harness package importable for the project's tests, whatever
folder pytest is started from."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
