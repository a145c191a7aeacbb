"""The boundary with the hosts: what a host runs for a play (`boot`) and what goes down
its stdin (`payload`). The host side of the boundary is `modules/` itself; nothing here
imports the runner or the CLI."""
