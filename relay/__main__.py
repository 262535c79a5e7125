"""``python -m tenchat.relay``: the same as the ``tenchat-relay`` command."""

from .cli import main

main()
