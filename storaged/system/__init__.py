"""What the daemon needs of the host system: the one command runner, block devices, host facts."""
