"""The browser app (Gradio) and its Hugging Face Space layout; needs the ``app`` extra (gradio)."""

from .app import AppOptions, RankedClip, VideoCLIPApp, build_interface, launch
from .space import space_readme, space_requirements, write_space

__all__ = [
    "AppOptions", "RankedClip", "VideoCLIPApp", "build_interface", "launch", "space_readme", "space_requirements",
    "write_space",
]
