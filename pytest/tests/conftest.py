"""The project's own tests: the harness package on the path, and its pytest
plugin (the `target` fixture and the --kernel/--spec/--host options)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytest_plugins = ["xenboot.plugin"]
