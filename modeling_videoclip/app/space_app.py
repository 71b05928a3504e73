"""The Hugging Face Space's ``app.py``: `space.write_space` copies this file beside a copy of the package and
``space.json`` (the model to serve), and the Space runs it (``python app.py``)."""

import json
from pathlib import Path

from modeling_videoclip.app import AppOptions, VideoCLIPApp, launch

if __name__ == "__main__":
    settings = json.loads((Path(__file__).parent / "space.json").read_text(encoding="utf-8"))
    # host None: Gradio takes the address the Space sets (GRADIO_SERVER_NAME), not 127.0.0.1.
    launch(VideoCLIPApp(AppOptions(model=settings["model"], weights=settings["weights"])), host=None)
