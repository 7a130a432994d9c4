/* Magnetic stripe card reader decoder (docs/protocols/msr.md). See msr.h for the streaming model; the Python twin
 * is protocols/msr/reference.py. */
#include "msr.h"

#include <stdlib.h>
#include <string.h>

#include "tw_bounds.h"
#include "tw_errors.h"
#include "tw_event.h"
#include "tw_msgpack.h"
#include "tw_msr.h"

#define PCT 0x25  /* track 1 start sentinel */
#define SEMI 0x3B /* tracks 2 and 3 start sentinel */
#define QM 0x3F   /* end sentinel */

/* byte classes */
#define C_DATA 0
#define C_START 1
#define C_END 2
#define C_SEP 3

enum mode { M_IDLE, M_TRACK, M_SKIP, M_LRC, M_LRC_SKIP };

/* per track number: the longest track from start to end sentinel (section 3), the character code base and mask */
static const size_t MAX_TRACK[4] = {0, TW_MAX_MSR_TRACK1, TW_MAX_MSR_TRACK2, TW_MAX_MSR_TRACK3};
static const uint8_t BASE[4] = {0, 0x20, 0x30, 0x30};
static const uint8_t MASK[4] = {0, 0x3F, 0x0F, 0x0F};

struct tw_msr {
    tw_msr_config cfg;
    tw_stream io;
    uint8_t cls[256];
    int top;           /* the reader's last track */
    uint8_t semi[2];   /* the numbers a ';' track may have, in order (0: none) */
    int64_t gap_ns;
    enum mode mode;
    int junk;          /* inside a run of unexpected bytes (reported once) */
    uint8_t buf[TW_MAX_MSR_TRACK3];
    size_t len;
    int tnum;
    uint64_t tstart;
    /* the swipe */
    int last;          /* the number of the last track begun in this swipe; 0: no swipe */
    uint64_t sstart;
    uint8_t good[3];
    unsigned ngood;
    uint8_t pan[TW_MSR_PAN_MAX];
    size_t pan_len;
    int mismatch;
    /* time */
    int fresh;
    int have_last;
    int64_t last_seen;
};

static void emit_error(tw_msr *d, int code, uint64_t offset)
{
    tw_emit_error(d->io.out, code, offset, NULL, 0); /* raw is always empty: a track byte may be card data */
}

static void end_swipe(tw_msr *d)
{
    if (!d->last)
        return;
    if (d->mismatch)
        emit_error(d, TW_ERR_MSR_PAN_MISMATCH, d->sstart);
    tw_msr_write_swipe(d->io.out, d->pan, d->mismatch ? 0 : d->pan_len, d->good, d->ngood);
    d->last = 0;
    d->ngood = 0;
    d->pan_len = 0;
    d->mismatch = 0;
}

static void track_done(tw_msr *d)
{
    if (d->tnum == d->top)
        end_swipe(d);
}

static void start_track(tw_msr *d, uint8_t b, uint64_t off)
{
    int n = 0;
    if (b == PCT) {
        n = d->last < 1 ? 1 : 0;
    } else if (d->semi[0] > d->last) {
        n = d->semi[0];
    } else if (d->semi[1] > d->last) {
        n = d->semi[1];
    }
    if (!n) {
        end_swipe(d);
        n = b == PCT ? 1 : d->semi[0];
    }
    if (!d->last)
        d->sstart = off;
    d->last = n;
    d->tnum = n;
    d->tstart = off;
    d->buf[0] = b;
    d->len = 1;
    d->mode = M_TRACK;
    d->junk = 0;
}

/* lrc < 0: no LRC byte */
static void finish(tw_msr *d, int lrc)
{
    int n = d->tnum;
    uint8_t base = BASE[n], top = (uint8_t)(BASE[n] + MASK[n]), x = 0;
    size_t i, len = d->len;
    int ok = 1;
    for (i = 1; i + 1 < len; i++) {
        uint8_t c = d->buf[i];
        if (c < base || c > top) {
            ok = 0;
            break;
        }
    }
    if (!ok || (n == 1 && len == 3 && d->buf[1] == 'E')) {
        emit_error(d, TW_ERR_MSR_BAD_TRACK, d->tstart);
    } else {
        if (lrc >= 0) {
            for (i = 0; i < len; i++)
                x ^= (uint8_t)(d->buf[i] - base);
            if (lrc < base || lrc > top || x != (uint8_t)(lrc - base))
                ok = 0;
        }
        if (!ok) {
            emit_error(d, TW_ERR_MSR_BAD_LRC, d->tstart);
        } else if (len > 2) {
            d->good[d->ngood++] = (uint8_t)n;
            if (n < 3) {
                size_t at = 0, pl = tw_msr_track_pan(d->buf, len, n, &at);
                if (pl) {
                    if (!d->pan_len) {
                        memcpy(d->pan, d->buf + at, pl);
                        d->pan_len = pl;
                    } else if (d->pan_len != pl || memcmp(d->pan, d->buf + at, pl) != 0) {
                        d->mismatch = 1;
                    }
                }
            }
        }
    }
    d->mode = M_IDLE;
    track_done(d);
}

static void flush(tw_msr *d)
{
    if (d->mode == M_TRACK) {
        emit_error(d, TW_ERR_MSR_NO_END_SENTINEL, d->tstart);
        d->mode = M_IDLE;
        track_done(d);
    } else if (d->mode == M_LRC) {
        emit_error(d, TW_ERR_MSR_BAD_LRC, d->tstart);
        d->mode = M_IDLE;
        track_done(d);
    }
    d->mode = M_IDLE;
    d->junk = 0;
    end_swipe(d);
}

static void walk(tw_msr *d, const uint8_t *p, const uint8_t *end)
{
    const uint8_t *cls = d->cls;
    while (p < end) {
        uint8_t b;
        switch (d->mode) {
        case M_TRACK: {
            /* fast path: data bytes up to the bound */
            size_t room = MAX_TRACK[d->tnum] - 1 - d->len;
            const uint8_t *q = p;
            const uint8_t *stop = (size_t)(end - p) < room ? end : p + room;
            while (q < stop && cls[*q] == C_DATA)
                q++;
            memcpy(d->buf + d->len, p, (size_t)(q - p));
            d->len += (size_t)(q - p);
            p = q;
            if (p == end)
                return;
            b = *p;
            if (cls[b] == C_DATA) { /* the bound: no room left for the end sentinel */
                emit_error(d, TW_ERR_MSR_TRACK_TOO_LONG, d->tstart);
                d->mode = M_SKIP;
                track_done(d);
                p++;
                continue;
            }
            if (cls[b] == C_END) {
                d->buf[d->len++] = b;
                p++;
                if (d->cfg.lrc)
                    d->mode = M_LRC;
                else
                    finish(d, -1);
                continue;
            }
            emit_error(d, TW_ERR_MSR_NO_END_SENTINEL, d->tstart);
            d->mode = M_IDLE;
            track_done(d);
            if (cls[b] == C_SEP) {
                d->junk = 0;
                p++;
                continue;
            }
            break; /* a start sentinel: handled below as in M_IDLE */
        }
        case M_SKIP:
            b = *p;
            if (cls[b] == C_END) {
                d->mode = d->cfg.lrc ? M_LRC_SKIP : M_IDLE;
                p++;
                continue;
            }
            if (cls[b] == C_SEP) {
                d->mode = M_IDLE;
                d->junk = 0;
                p++;
                continue;
            }
            if (cls[b] != C_START) {
                p++;
                continue;
            }
            d->mode = M_IDLE;
            break;
        case M_LRC:
            finish(d, *p++);
            continue;
        case M_LRC_SKIP:
            d->mode = M_IDLE;
            p++;
            continue;
        default:
            break;
        }
        /* M_IDLE */
        b = *p;
        if (cls[b] == C_START) {
            start_track(d, b, d->io.in_base + (uint64_t)(p - d->io.in_start));
        } else if (cls[b] == C_SEP) {
            d->junk = 0;
        } else if (!d->junk) {
            emit_error(d, TW_ERR_UNEXPECTED_BYTE, d->io.in_base + (uint64_t)(p - d->io.in_start));
            d->junk = 1;
        }
        p++;
    }
}

tw_msr *tw_msr_new(const tw_msr_config *cfg)
{
    tw_msr *d;
    int k = 0, t;
    if (!cfg || cfg->separator < TW_MSR_SEP_CR || cfg->separator > TW_MSR_SEP_NONE || cfg->gap_ms < 1 ||
        cfg->gap_ms > 60000 || !cfg->tracks || (cfg->tracks & ~0xEu))
        return NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->cfg = *cfg;
    d->cls[PCT] = d->cls[SEMI] = C_START;
    d->cls[QM] = C_END;
    if (cfg->separator == TW_MSR_SEP_CR || cfg->separator == TW_MSR_SEP_CRLF)
        d->cls[0x0D] = C_SEP;
    if (cfg->separator == TW_MSR_SEP_LF || cfg->separator == TW_MSR_SEP_CRLF)
        d->cls[0x0A] = C_SEP;
    for (t = 1; t <= 3; t++)
        if (cfg->tracks & (1u << t))
            d->top = t;
    for (t = 2; t <= 3; t++)
        if (cfg->tracks & (1u << t))
            d->semi[k++] = (uint8_t)t;
    if (!k)
        d->semi[0] = 2;
    d->gap_ns = (int64_t)cfg->gap_ms * 1000000;
    return d;
}

void tw_msr_free(tw_msr *d)
{
    free(d);
}

int tw_msr_feed(tw_msr *d, const uint8_t *data, size_t len, tw_out *out)
{
    int rc = tw_stream_begin_feed(&d->io, data, out);
    if (rc != TW_OK)
        return rc;
    if (len) {
        walk(d, data, data + len);
        d->fresh = 1;
    }
    return tw_stream_end(&d->io, len);
}

int tw_msr_tick(tw_msr *d, int64_t now_ns, tw_out *out)
{
    int rc = tw_stream_begin_feed(&d->io, NULL, out);
    if (rc != TW_OK)
        return rc;
    if (d->fresh) {
        d->fresh = 0;
        d->have_last = 1;
        d->last_seen = now_ns;
    } else if ((d->last || d->mode != M_IDLE || d->junk) && d->have_last) {
        /* now - last > gap without overflow: compare in unsigned arithmetic when now >= last */
        if (now_ns > d->last_seen && (uint64_t)now_ns - (uint64_t)d->last_seen > (uint64_t)d->gap_ns)
            flush(d);
    }
    return tw_stream_end(&d->io, 0);
}

int tw_msr_close(tw_msr *d, tw_out *out)
{
    int rc = tw_stream_begin_close(&d->io, out);
    if (rc != TW_OK)
        return rc;
    flush(d);
    return tw_stream_end(&d->io, 0);
}
