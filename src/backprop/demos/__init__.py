"""The classic tutorials as runnable demos, built on the public API only."""
