"""Sub-commands of `teller-guard`; each module exposes `register(subparsers)`."""
