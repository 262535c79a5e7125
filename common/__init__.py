"""Pure protocol and crypto logic shared by the client and the relay: no sockets, no files."""
