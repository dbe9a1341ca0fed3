"""Sub-commands of the command line, one module each (see ``backprop.cli``)."""
