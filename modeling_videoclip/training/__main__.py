"""``python -m modeling_videoclip.training``, which ``torchrun`` and ``accelerate launch -m`` start."""

from .entry import main

raise SystemExit(main())
