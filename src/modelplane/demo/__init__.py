"""The end-to-end demo: `python -m modelplane.demo` (the README's first command)."""
