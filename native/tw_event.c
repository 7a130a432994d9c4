#include "tw_event.h"

#include "tw_bounds.h"
#include "tw_errors.h"

/* the fixed part of a protocol.error: envelope, four keys, the offset (at most 9 bytes), three length headers */
#define ERROR_ROOM 96

void tw_emit_error(tw_out *out, int code, uint64_t offset, const uint8_t *raw, size_t raw_len)
{
    uint8_t *p;
    if (raw_len > TW_MAX_ERROR_RAW)
        raw_len = TW_MAX_ERROR_RAW;
    p = tw_out_room(out, ERROR_ROOM + tw_error_name_len(code) + tw_error_reason_len(code) + raw_len);
    if (!p)
        return;
    p = TW_HEAD(p, "protocol.error", 4);
    p = TW_KEY(p, "code");
    p = tw_mpw_str(p, tw_error_name(code), tw_error_name_len(code));
    p = TW_KEY(p, "reason");
    p = tw_mpw_str(p, tw_error_reason(code), tw_error_reason_len(code));
    p = TW_KEY(p, "offset");
    p = tw_mpw_uint(p, offset);
    p = TW_KEY(p, "raw");
    p = tw_mpw_bin(p, raw, raw_len);
    tw_out_commit(out, p);
}

int tw_stream_begin_feed(tw_stream *s, const uint8_t *data, tw_out *out)
{
    if (s->closed)
        return TW_ERR_CLOSED;
    if (s->failed)
        return s->failed;
    s->out = out;
    s->in_start = data;
    s->in_base = s->offset;
    return TW_OK;
}

int tw_stream_begin_close(tw_stream *s, tw_out *out)
{
    if (s->closed)
        return TW_ERR_CLOSED;
    s->closed = 1;
    if (s->failed)
        return s->failed;
    s->out = out;
    s->in_start = NULL;
    return TW_OK;
}

int tw_stream_end(tw_stream *s, size_t consumed)
{
    s->offset += consumed;
    if (s->out->oom)
        s->failed = TW_ERR_NOMEM;
    s->out = NULL;
    s->in_start = NULL;
    return s->failed;
}
