"""Control plane: the shared registry of processes, topics, endpoints, entries and references
(the job Agnocast gives its kernel module), its robust locks and dead-process repair."""
