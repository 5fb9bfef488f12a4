"""Data plane: publish, wake-up, receive, take, reference release and reclamation, and the
announcement of new publishers to subscribing processes."""
