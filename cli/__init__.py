"""The ``cdp`` command line: imports, administration and the demo."""
