"""``python -m ganzoo`` (also what ``torchrun -m ganzoo`` runs)."""

from .cli import cli

if __name__ == "__main__":
    cli(prog_name="ganzoo")
