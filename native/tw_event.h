/* The event envelope every decoder writes, {"type": str, "data": {...}}, and the one protocol.error writer
 * (docs/protocols/escpos.md section 10: {code, reason, offset, raw}), shared so that every protocol reports
 * errors byte for byte alike. */
#ifndef TW_EVENT_H
#define TW_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "tw_msgpack.h"

/* {"type": type, "data": {<nkeys keys follow>}} */
TW_INLINE uint8_t *tw_event_head(uint8_t *p, const char *type, size_t type_len, uint32_t nkeys)
{
    p = tw_mpw_map(p, 2);
    p = TW_MPW_LIT(p, "type");
    p = tw_mpw_str(p, type, type_len);
    p = TW_MPW_LIT(p, "data");
    return tw_mpw_map(p, nkeys);
}
#define TW_HEAD(p, type, nkeys) tw_event_head((p), (type), sizeof(type) - 1, (nkeys))
#define TW_KEY(p, key) TW_MPW_LIT((p), key)

/* The per-stream bookkeeping every decoder shares. Between calls only `offset`, `failed` and `closed` matter;
 * during feed()/close() `out` is where events go and `in_start` is this call's input, whose first byte is at
 * stream offset `in_base`. */
typedef struct tw_stream {
    uint64_t offset;         /* stream offset of the next byte fed */
    int closed;
    int failed;              /* sticky TW_ERR_NOMEM once the output could not grow */
    tw_out *out;
    const uint8_t *in_start;
    uint64_t in_base;
} tw_stream;

/* Starts a feed() (or, with data NULL, a close()): TW_OK when the decoder may proceed, else the status to return
 * at once (closed, or failed earlier). begin_close also marks the stream closed. */
int tw_stream_begin_feed(tw_stream *s, const uint8_t *data, tw_out *out);
int tw_stream_begin_close(tw_stream *s, tw_out *out);
/* Ends the call: `consumed` input bytes advance the offset; an output that could not grow makes the stream fail
 * for good. Returns the call's status. */
int tw_stream_end(tw_stream *s, size_t consumed);

/* protocol.error {code, reason, offset, raw}; raw is cut to TW_MAX_ERROR_RAW bytes. On OOM it writes nothing and
 * the tw_out's oom flag says so. */
void tw_emit_error(tw_out *out, int code, uint64_t offset, const uint8_t *raw, size_t raw_len);

#endif
