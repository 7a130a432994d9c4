"""Sans-IO protocol decoders: bytes in, msgpack event bodies out.

    from protocols import Decoder
    dec = Decoder("escpos", direction="to_device")
    out = dec.feed(chunk)          # concatenated msgpack maps {"type", "data"}
    evs = dec.events(chunk)        # the same, unpacked
    out += dec.close()             # end of stream: flush, or report a truncated command

``TILLWIRE_BACKEND=native|reference`` picks the C core or the pure-Python twin (default: native). Both
give byte-identical output for every input and every split of it into chunks. Nothing here performs I/O,
reads a clock or starts a thread.
"""

from protocols.decoder import BACKENDS, Decoder, DecoderClosed, available_protocols, default_backend

__all__ = ["BACKENDS", "Decoder", "DecoderClosed", "available_protocols", "default_backend"]
