/* Length-prefixed framing (docs/protocols/iso8583.md sections 1 and 2). See lenframe.h. */
#include "lenframe.h"

#include <stdlib.h>
#include <string.h>

#include "tw_bounds.h"
#include "tw_card.h"
#include "tw_errors.h"
#include "tw_event.h"

static const uint8_t empty[1] = {0}; /* what an empty frame points at */

static const struct {
    const char *name;
    unsigned name_len, plen;
} framings[] = {
    {"len2", 4, 2}, {"len4", 4, 4}, {"ascii4", 6, 4}, {"hex4", 4, 4}, {"bcd2", 4, 2}, {"vmlh", 4, 4}, {"none", 4, 0},
};
#define N_FRAMINGS (sizeof(framings) / sizeof(framings[0]))

const char *tw_lenframe_name(int framing, size_t *len)
{
    if (framing < 0 || (size_t)framing >= N_FRAMINGS) {
        *len = 0;
        return "";
    }
    *len = framings[framing].name_len;
    return framings[framing].name;
}

int tw_lenframe_init(tw_lenframe *f, int framing, unsigned header, uint32_t bound)
{
    memset(f, 0, sizeof(*f));
    if (framing < 0 || (size_t)framing >= N_FRAMINGS || header > TW_MAX_LINK_HEADER || bound > (1u << 31))
        return TW_ERR_BAD_CONFIG;
    f->framing = framing;
    f->plen = framings[framing].plen;
    f->header = header;
    f->bound = bound;
    return TW_OK;
}

void tw_lenframe_release(tw_lenframe *f)
{
    free(f->buf);
    f->buf = NULL;
    f->cap = f->len = 0;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* TW_OK and *length, or the error code of a complete prefix at p */
static int parse_prefix(const tw_lenframe *f, const uint8_t *p, uint32_t *length)
{
    uint32_t v = 0;
    unsigned i;
    switch (f->framing) {
    case TW_LF_LEN2:
        v = (uint32_t)p[0] << 8 | p[1];
        break;
    case TW_LF_LEN4:
        v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        break;
    case TW_LF_ASCII4:
        for (i = 0; i < 4; i++) {
            if (p[i] < '0' || p[i] > '9')
                return TW_ERR_BAD_LENGTH_PREFIX;
            v = v * 10 + (uint32_t)(p[i] - '0');
        }
        break;
    case TW_LF_HEX4:
        for (i = 0; i < 4; i++) {
            int h = hexval(p[i]);
            if (h < 0)
                return TW_ERR_BAD_LENGTH_PREFIX;
            v = v << 4 | (uint32_t)h;
        }
        break;
    case TW_LF_BCD2:
        for (i = 0; i < 2; i++) {
            if ((p[i] >> 4) > 9 || (p[i] & 15) > 9)
                return TW_ERR_BAD_LENGTH_PREFIX;
            v = v * 100 + (uint32_t)(p[i] >> 4) * 10 + (p[i] & 15);
        }
        break;
    default: /* vmlh */
        if (p[2] || p[3])
            return TW_ERR_BAD_LENGTH_PREFIX;
        v = (uint32_t)p[0] << 8 | p[1];
        break;
    }
    if (v < f->header)
        return TW_ERR_BAD_LENGTH_PREFIX;
    if (v > f->bound)
        return TW_ERR_LENGTH_TOO_LARGE;
    *length = v;
    return TW_OK;
}

/* room for n more collected bytes (geometric growth, never past the bound) */
static int reserve(tw_lenframe *f, size_t n)
{
    size_t want = f->len + n, cap;
    uint8_t *b;
    if (want <= f->cap)
        return 1;
    cap = f->cap ? f->cap : 256;
    while (cap < want)
        cap *= 2;
    if (cap > f->bound)
        cap = want > f->bound ? want : f->bound;
    b = realloc(f->buf, cap);
    if (!b) {
        f->nomem = 1;
        return 0;
    }
    f->buf = b;
    f->cap = cap;
    return 1;
}

/* A length framing has no resynchronisation point: once out of step, what it reads as a prefix may be message
 * data (a PAN), so its errors quote nothing (payment.md section 2, iso8583.md section 1): raw is always empty. */
static void set_error(tw_lenframe *f, tw_lf_result *r, int code, uint64_t off)
{
    (void)f;
    r->kind = TW_LF_ERROR;
    r->code = code;
    r->offset = off;
    r->raw = NULL;
    r->raw_len = 0;
}

size_t tw_lenframe_take(tw_lenframe *f, const uint8_t *p, size_t n, uint64_t off, tw_lf_result *r)
{
    size_t i = 0;
    uint32_t length = 0;
    int code;

    r->kind = TW_LF_NOTHING;
    if (f->framing == TW_LF_NONE) {
        if (!f->overflow) {
            if (n > f->bound - f->len) {
                f->overflow = 1;
                f->len = 0;
                set_error(f, r, TW_ERR_LENGTH_TOO_LARGE, 0);
            } else if (n && reserve(f, n)) {
                memcpy(f->buf + f->len, p, n);
                f->len += n;
            }
        }
        return n;
    }
    while (i < n) {
        if (f->in_frame) {
            size_t take = n - i < f->need ? n - i : f->need;
            if (f->buf)
                memcpy(f->buf + f->len, p + i, take);
            f->len += take;
            i += take;
            f->need -= (uint32_t)take;
            if (f->need)
                continue;
            f->in_frame = 0;
            r->kind = TW_LF_FRAME;
            r->offset = f->frame_off;
            r->frame = f->buf ? f->buf : empty;
            r->frame_len = f->len;
            f->len = 0;
            return i;
        }
        /* fast path: the whole prefix and frame are in the input */
        if (f->npre == 0 && n - i >= f->plen && parse_prefix(f, p + i, &length) == TW_OK &&
            n - i - f->plen >= length) {
            f->run = 0;
            memcpy(f->prefix, p + i, f->plen);
            r->kind = TW_LF_FRAME;
            r->offset = off + i;
            r->frame = p + i + f->plen;
            r->frame_len = length;
            return i + f->plen + length;
        }
        if (f->npre == 0)
            f->pre_off = off + i;
        f->pre[f->npre++] = p[i++];
        if (f->npre < f->plen)
            continue;
        code = parse_prefix(f, f->pre, &length);
        if (code != TW_OK) {
            int report = !f->run;
            f->run = 1;
            if (report)
                set_error(f, r, code, f->pre_off);
            /* skip the prefix's first byte; the others are read again */
            memmove(f->pre, f->pre + 1, f->plen - 1);
            f->npre--;
            f->pre_off++;
            if (report)
                return i;
            continue;
        }
        f->run = 0;
        f->frame_off = f->pre_off;
        memcpy(f->prefix, f->pre, f->plen);
        f->npre = 0;
        f->len = 0;
        if (length == 0) {
            r->kind = TW_LF_FRAME;
            r->offset = f->frame_off;
            r->frame = f->buf ? f->buf : empty;
            r->frame_len = 0;
            return i;
        }
        f->in_frame = 1;
        f->need = length;
        f->flen = length;
        if (!reserve(f, length)) {
            /* out of memory: the frame's bytes are counted but not kept */
            tw_lenframe_release(f);
        }
    }
    return i;
}

void tw_lenframe_finish(tw_lenframe *f, tw_lf_result *r)
{
    r->kind = TW_LF_NOTHING;
    if (f->framing == TW_LF_NONE) {
        if (!f->overflow && f->len) {
            r->kind = TW_LF_FRAME;
            r->offset = 0;
            r->frame = f->buf ? f->buf : empty;
            r->frame_len = f->len;
            f->len = 0;
        }
        return;
    }
    if (f->in_frame) {
        f->in_frame = 0;
        set_error(f, r, TW_ERR_TRUNCATED, f->frame_off);
    } else if (f->npre) {
        set_error(f, r, TW_ERR_TRUNCATED, f->pre_off);
        f->npre = 0;
    }
}

/* ------------------------------------------------------------------------------------ lenframe decoder */

struct tw_lenframe_dec {
    tw_lenframe f;
    tw_stream io;
};

tw_lenframe_dec *tw_lenframe_new(int framing, unsigned header)
{
    tw_lenframe_dec *d;
    if (framing == TW_LF_NONE)
        return NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    if (tw_lenframe_init(&d->f, framing, header, TW_MAX_LENFRAME) != TW_OK) {
        free(d);
        return NULL;
    }
    return d;
}

void tw_lenframe_free(tw_lenframe_dec *d)
{
    if (!d)
        return;
    tw_lenframe_release(&d->f);
    free(d);
}

static const char hexdigits[] = "0123456789abcdef";

/* ------------------------------------------------------------------------- the driver decoders share */

static void run_report(tw_lenframe *f, tw_stream *io, const tw_lf_result *r, tw_lf_frame_fn on_frame, void *ctx)
{
    if (f->nomem) {
        io->out->oom = 1; /* sticky: the stream fails */
        return;
    }
    if (r->kind == TW_LF_FRAME)
        on_frame(ctx, r);
    else if (r->kind == TW_LF_ERROR)
        tw_emit_error(io->out, r->code, r->offset, r->raw, r->raw_len);
}

int tw_lenframe_run_feed(tw_lenframe *f, tw_stream *io, const uint8_t *data, size_t len, tw_out *out,
                         tw_lf_frame_fn on_frame, void *ctx)
{
    size_t pos = 0;
    int rc = tw_stream_begin_feed(io, data, out);
    if (rc != TW_OK)
        return rc;
    while (pos < len) {
        tw_lf_result r;
        pos += tw_lenframe_take(f, data + pos, len - pos, io->in_base + pos, &r);
        run_report(f, io, &r, on_frame, ctx);
    }
    return tw_stream_end(io, len);
}

int tw_lenframe_run_close(tw_lenframe *f, tw_stream *io, tw_out *out, tw_lf_frame_fn on_frame, void *ctx)
{
    tw_lf_result r;
    int rc = tw_stream_begin_close(io, out);
    if (rc != TW_OK)
        return rc;
    tw_lenframe_finish(f, &r);
    run_report(f, io, &r, on_frame, ctx);
    return tw_stream_end(io, 0);
}

static void emit_frame(tw_lenframe_dec *d, const tw_lf_result *r)
{
    size_t name_len, h = d->f.header, plen = r->frame_len - h, i;
    const char *name = tw_lenframe_name(d->f.framing, &name_len);
    uint8_t *p = tw_out_room(d->io.out, 96 + plen + 2 * h), *payload;
    if (!p)
        return;
    p = TW_HEAD(p, "ecr.frame", h ? 3 : 2);
    p = TW_KEY(p, "dialect");
    p = tw_mpw_str(p, name, name_len);
    p = TW_KEY(p, "payload");
    p = tw_mpw_bin_header(p, plen);
    payload = p;
    if (plen)
        memcpy(p, r->frame + h, plen);
    tw_card_scrub(payload, plen);
    p += plen;
    if (h) {
        p = TW_KEY(p, "header");
        p = tw_mpw_str_header(p, 2 * h);
        for (i = 0; i < h; i++) {
            *p++ = (uint8_t)hexdigits[r->frame[i] >> 4];
            *p++ = (uint8_t)hexdigits[r->frame[i] & 15];
        }
    }
    tw_out_commit(d->io.out, p);
}

static void on_frame(void *ctx, const tw_lf_result *r) { emit_frame(ctx, r); }

int tw_lenframe_feed(tw_lenframe_dec *d, const uint8_t *data, size_t len, tw_out *out)
{
    return tw_lenframe_run_feed(&d->f, &d->io, data, len, out, on_frame, d);
}

int tw_lenframe_close(tw_lenframe_dec *d, tw_out *out)
{
    return tw_lenframe_run_close(&d->f, &d->io, out, on_frame, d);
}
