"""The command line: one Typer sub-app per noun; heavy libraries are imported inside command bodies."""
