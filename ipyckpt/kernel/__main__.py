"""Entry point of the kernelspecs: python -m ipyckpt.kernel [--restart] -f FILE."""
from .app import main

main()
