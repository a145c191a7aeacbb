"""The programs a host runs: the one that runs a play (`boot`) and commit confirmed's
watchdog (`safe_apply`, with its files, `confirm_files`). Standard library only, shipped
down a host's stdin by vnetctl.runner.payload; nothing here imports the rest of vnetctl."""
