"""The Triton process: its command line, ports, keys, TLS, profiles and health."""
