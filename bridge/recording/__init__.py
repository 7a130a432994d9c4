"""Session recordings (``.tws``): the format, the writer and reader (``tws``), pcapng export (``pcapng``)."""
