"""Thin D-Bus adapters over the engine: types, errors, authorization, signals."""
