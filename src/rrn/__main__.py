"""``python -m rrn`` runs the command-line tool (also what ``torchrun -m rrn`` starts)."""

from rrn.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
