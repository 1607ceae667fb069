"""`python -m genvid_devstack up|down|run|status`: the front door behind `make up/down/dev`."""

from __future__ import annotations

import argparse
from pathlib import Path

from genvid_devstack import stack
from genvid_devstack.state import State, default_state_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genvid-devstack", description=__doc__)
    parser.add_argument(
        "command",
        choices=["run", "up", "down", "status"],
        help="run: foreground until Ctrl-C; up: start in the background; down: stop it",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="state folder (default: $GENVID_STATE_DIR or .genvid/ in the checkout)",
    )
    args = parser.parse_args(argv)
    state = State((args.state_dir or default_state_dir()).resolve())
    if args.command == "run":
        return stack.run(state)
    if args.command == "up":
        return stack.up(state)
    if args.command == "down":
        return stack.down(state)
    return stack.status(state)


if __name__ == "__main__":
    raise SystemExit(main())
