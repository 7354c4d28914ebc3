"""aos-py: the aos experience of the AO network on your own machine, in Python."""

__version__ = "0.1.0"
AOS_PROCESS_VERSION = "2.0.4"
