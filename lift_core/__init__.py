"""LIFT Studio's core: tables in, prompts, LoRA fine-tuning, evaluation, baselines, runs, export.

The Streamlit pages and the command line (``python -m lift_core``) only call into this package.
"""

from lift_core.errors import LiftError

__all__ = ["LiftError"]
