"""Small runnable programs: the console scripts ``talker`` and ``listener``."""
