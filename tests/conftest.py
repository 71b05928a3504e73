"""Test-suite set-up: no test may reach the real Hugging Face Hub.

The environment is fixed here, before anything imports huggingface_hub, because the library reads these
variables at import time. Tests that talk to the project's local Hub-protocol server (``hub_server``, whose
``local_hub`` fixture is registered here for every test module) do so from subprocesses whose environment points
``HF_ENDPOINT`` at that server.
"""

import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="videoclip-test-hf-home-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = ("hub_server",)
