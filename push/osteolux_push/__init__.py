"""The osteolux push client: sends Living Image clicks from an instrument PC to a study.

Installs on its own (``pip install ./push``, distribution ``osteolux-push``, command
``osteolux-push``) with httpx2, tqdm and stamina only; the server's ``osteolux push`` is the
same code. Modules: :mod:`~osteolux_push.folders` (click folders on disk),
:mod:`~osteolux_push.client` (the server, retries, passes), :mod:`~osteolux_push.cli`.
"""

from osteolux_push.cli import main
from osteolux_push.client import PushOptions, push
from osteolux_push.folders import STATE_FILE, click_number, click_time, zip_click

__all__ = ["STATE_FILE", "PushOptions", "click_number", "click_time", "main", "push", "zip_click"]
