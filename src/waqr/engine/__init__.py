"""The boundary to WhatsApp: the Engine protocol and its child-process implementation.

Nothing outside this package imports neonize; only ``child.py`` does, and only inside the
engine child process.
"""
