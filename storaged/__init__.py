"""storaged: virtual storage pools (LVM volume groups) on the D-Bus system bus."""

__version__ = "0.1.0"
