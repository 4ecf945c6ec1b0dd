"""One module per command family; each command parses, makes one library call, renders."""
