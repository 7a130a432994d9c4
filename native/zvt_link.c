/* ZVT link layer decoder (docs/protocols/zvt-link.md). See zvt_link.h for the streaming model. */
#include "zvt_link.h"

#include <stdlib.h>
#include <string.h>

#include "tw_bounds.h"
#include "tw_crc.h"
#include "tw_errors.h"
#include "tw_event.h"
#include "tw_msgpack.h"
#include "zvt_apdu.h"

#define DLE 0x10
#define STX 0x02
#define ETX 0x03
#define ACK 0x06
#define NAK 0x15
#define LEN_EXTENDED 0xFF

/* ---------------------------------------------------------------------------------------------- state */

enum serial_state {
    S_GROUND, /* between frames */
    S_FRAME,  /* inside DLE STX ... */
    S_DLE,    /* inside a frame, after a DLE */
    S_CRC     /* after DLE ETX: the two CRC bytes */
};

struct tw_zvt_link {
    int tcp;
    int strict;
    uint8_t *buf;  /* the APDU being received (header included), TW_MAX_ZVT_APDU bytes, allocated once */
    tw_zvt_apdu_state apdu; /* the APDU decoder's per-tag table */
    tw_stream io; /* offset, sticky status, and this call's output and input (tw_event.h) */

    /* the APDU being collected: its header (the first <= 5 bytes) and how many bytes it has. Only a CRC-checked
     * serial frame's header is ever quoted in an error (by the APDU layer); on tcp it may be message bytes. */
    uint8_t hdr[TW_ZVT_MAX_HEADER];
    unsigned hdr_len;
    uint32_t count;     /* bytes of the APDU in buf */

    /* tcp */
    int in_apdu;        /* an APDU has started */
    int hdr_done;       /* its header is complete; remaining counts its data */
    uint32_t remaining;
    uint64_t apdu_off;

    /* serial */
    enum serial_state state;
    int garbage;        /* inside a run of unexpected bytes (only its first byte is reported) */
    int pending_dle;    /* ground: a DLE whose next byte has not arrived */
    uint64_t pending_off;
    uint64_t frame_off; /* the frame's DLE STX */
    uint64_t dle_off;   /* S_DLE: the DLE */
    uint16_t crc;       /* CRC-16/KERMIT over the unstuffed bytes so far */
    uint8_t crc_lo;
    int ncrc;           /* S_CRC: CRC bytes received */
};

static const uint8_t dle_stx[2] = {DLE, STX};

/* --------------------------------------------------------------------------------------- msgpack out */

static uint64_t offset_of(const tw_zvt_link *d, const uint8_t *p)
{
    return d->io.in_base + (uint64_t)(p - d->io.in_start);
}

/* room for the fixed part of any event here (type, keys, ints, a command name); strings and raw come on top */
#define EVENT_ROOM 128

#define HEAD TW_HEAD /* tw_event.h */
#define KEY TW_KEY

static void emit_empty(tw_zvt_link *d, const char *type, size_t type_len)
{
    uint8_t *p = tw_out_room(d->io.out, EVENT_ROOM);
    if (!p)
        return;
    p = tw_event_head(p, type, type_len, 0);
    tw_out_commit(d->io.out, p);
}
#define EMIT_EMPTY(d, type) emit_empty((d), (type), sizeof(type) - 1)

static void emit_error(tw_zvt_link *d, int code, uint64_t off, const uint8_t *raw, size_t raw_len)
{
    tw_emit_error(d->io.out, code, off, raw, raw_len);
}

static void emit_checksum_error(tw_zvt_link *d, uint16_t expected, uint16_t got)
{
    uint8_t *p = tw_out_room(d->io.out, EVENT_ROOM);
    if (!p)
        return;
    p = HEAD(p, "link.checksum_error", 2);
    p = KEY(p, "expected");
    p = tw_mpw_uint(p, expected);
    p = KEY(p, "got");
    p = tw_mpw_uint(p, got);
    tw_out_commit(d->io.out, p);
}

/* Overwrites the used part of the APDU buffer: card data must not linger after its APDU. */
static void wipe(tw_zvt_link *d)
{
    if (d->count)
        memset(d->buf, 0, d->count);
    d->count = 0;
}

/* 3 or 5 once hdr holds a complete header, else 0 */
static unsigned header_len(const tw_zvt_link *d)
{
    if (d->hdr_len < 3)
        return 0;
    if (d->hdr[2] != LEN_EXTENDED)
        return 3;
    return d->hdr_len >= 5 ? 5 : 0;
}

static uint32_t declared_len(const tw_zvt_link *d)
{
    return d->hdr[2] != LEN_EXTENDED ? d->hdr[2] : (uint32_t)d->hdr[3] | (uint32_t)d->hdr[4] << 8;
}

/* ----------------------------------------------------------------------------------------- zvt-tcp (§2) */

static void walk_tcp(tw_zvt_link *d, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        if (!d->in_apdu) {
            d->in_apdu = 1;
            d->hdr_done = 0;
            d->hdr_len = 0;
            d->count = 0;
            d->apdu_off = offset_of(d, p);
        }
        if (!d->hdr_done) {
            d->buf[d->count++] = *p;
            d->hdr[d->hdr_len++] = *p++;
            if (!header_len(d))
                continue;
            d->hdr_done = 1;
            d->remaining = declared_len(d);
        } else {
            size_t n = (size_t)(end - p);
            if (n > d->remaining)
                n = d->remaining;
            memcpy(d->buf + d->count, p, n); /* count + remaining <= TW_MAX_ZVT_APDU */
            d->count += (uint32_t)n;
            p += n;
            d->remaining -= (uint32_t)n;
        }
        if (d->remaining == 0) {
            tw_zvt_apdu_decode(&d->apdu, d->buf, d->count, header_len(d), d->apdu_off, d->strict, 0, d->io.out);
            wipe(d);
            d->in_apdu = 0;
        }
    }
}

/* -------------------------------------------------------------------------------------- zvt-serial (§3) */

static void unexpected(tw_zvt_link *d, uint64_t off, uint8_t b)
{
    if (d->garbage)
        return;
    d->garbage = 1;
    emit_error(d, TW_ERR_UNEXPECTED_BYTE, off, &b, 1);
}

static void start_frame(tw_zvt_link *d, uint64_t off)
{
    d->garbage = 0;
    d->state = S_FRAME;
    d->frame_off = off;
    d->hdr_len = 0;
    wipe(d);
    d->crc = 0;
}

/* Takes up to n unstuffed frame bytes at p; returns how many input bytes it consumed. Past TW_MAX_ZVT_APDU the
 * frame is abandoned (the byte that overflowed is consumed) and decoding goes on in ground, inside an unexpected
 * run. */
static size_t frame_data(tw_zvt_link *d, const uint8_t *p, size_t n)
{
    size_t room = TW_MAX_ZVT_APDU - d->count, take = n < room ? n : room;
    size_t h = 0;
    while (d->hdr_len < TW_ZVT_MAX_HEADER && h < take)
        d->hdr[d->hdr_len++] = p[h++];
    d->crc = tw_crc16_kermit(d->crc, p, take);
    memcpy(d->buf + d->count, p, take);
    d->count += (uint32_t)take;
    if (take == n)
        return n;
    emit_error(d, TW_ERR_FRAME_TOO_LONG, d->frame_off, dle_stx, 2);
    wipe(d);
    d->state = S_GROUND;
    d->garbage = 1;
    return take + 1;
}

static void frame_done(tw_zvt_link *d, uint16_t got)
{
    unsigned hl;
    if (got != d->crc) {
        wipe(d);
        emit_checksum_error(d, d->crc, got);
        return;
    }
    hl = header_len(d);
    if (!hl) {
        wipe(d);
        emit_error(d, TW_ERR_SHORT_APDU, d->frame_off, dle_stx, 2);
        return;
    }
    tw_zvt_apdu_decode(&d->apdu, d->buf, d->count, hl, d->frame_off, d->strict, 1, d->io.out);
    wipe(d);
}

static void walk_serial(tw_zvt_link *d, const uint8_t *p, const uint8_t *end)
{
    static const uint8_t etx = ETX;
    while (p < end) {
        uint8_t b;
        switch (d->state) {
        case S_GROUND:
            if (d->pending_dle) {
                d->pending_dle = 0;
                if (*p == STX) {
                    start_frame(d, d->pending_off);
                    p++;
                    break;
                }
                unexpected(d, d->pending_off, DLE); /* only the DLE is taken; *p is decoded afresh */
            }
            if (d->garbage) { /* skipped silently up to the next valid token */
                while (p < end && *p != ACK && *p != NAK && *p != DLE)
                    p++;
                if (p == end)
                    return;
            }
            b = *p;
            if (b == ACK) {
                d->garbage = 0;
                EMIT_EMPTY(d, "link.ack");
            } else if (b == NAK) {
                d->garbage = 0;
                EMIT_EMPTY(d, "link.nak");
            } else if (b == DLE) {
                d->pending_dle = 1;
                d->pending_off = offset_of(d, p);
            } else {
                unexpected(d, offset_of(d, p), b);
            }
            p++;
            break;
        case S_FRAME: {
            const uint8_t *dle = memchr(p, DLE, (size_t)(end - p));
            const uint8_t *stop = dle ? dle : end;
            if (stop > p) {
                p += frame_data(d, p, (size_t)(stop - p));
                break; /* the state may have changed; the loop looks again */
            }
            d->state = S_DLE;
            d->dle_off = offset_of(d, p);
            p++;
            break;
        }
        case S_DLE:
            b = *p;
            if (b == DLE) {
                d->state = S_FRAME;
                p += frame_data(d, p, 1);
            } else if (b == ETX) {
                d->crc = tw_crc16_kermit(d->crc, &etx, 1);
                d->state = S_CRC;
                d->ncrc = 0;
                p++;
            } else if (b == STX) {
                emit_error(d, TW_ERR_FRAME_RESTARTED, d->frame_off, dle_stx, 2);
                start_frame(d, d->dle_off);
                p++;
            } else {
                uint8_t raw[2];
                raw[0] = DLE;
                raw[1] = b;
                emit_error(d, TW_ERR_BAD_ESCAPE, d->dle_off, raw, 2);
                wipe(d);
                d->state = S_GROUND; /* b is decoded afresh in ground (not consumed here) */
            }
            break;
        case S_CRC:
            if (d->ncrc == 0) {
                d->crc_lo = *p++;
                d->ncrc = 1;
            } else {
                uint16_t got = (uint16_t)(d->crc_lo | (unsigned)*p << 8);
                p++;
                d->state = S_GROUND;
                frame_done(d, got);
            }
            break;
        }
    }
}

/* ------------------------------------------------------------------------------------------------ API */

tw_zvt_link *tw_zvt_link_new(int framing, int strict)
{
    tw_zvt_link *d;
    if (framing != TW_ZVT_SERIAL && framing != TW_ZVT_TCP)
        return NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->buf = calloc(1, TW_MAX_ZVT_APDU);
    if (!d->buf) {
        free(d);
        return NULL;
    }
    d->tcp = framing == TW_ZVT_TCP;
    d->strict = strict != 0;
    d->state = S_GROUND;
    return d;
}

void tw_zvt_link_free(tw_zvt_link *d)
{
    if (!d)
        return;
    wipe(d);
    free(d->buf);
    free(d);
}

int tw_zvt_link_feed(tw_zvt_link *d, const uint8_t *data, size_t len, tw_out *out)
{
    int rc = tw_stream_begin_feed(&d->io, data, out);
    if (rc != TW_OK)
        return rc;
    if (len) {
        if (d->tcp)
            walk_tcp(d, data, data + len);
        else
            walk_serial(d, data, data + len);
    }
    return tw_stream_end(&d->io, len);
}

int tw_zvt_link_close(tw_zvt_link *d, tw_out *out)
{
    int rc = tw_stream_begin_close(&d->io, out);
    if (rc != TW_OK)
        return rc;
    if (d->tcp) {
        if (d->in_apdu) /* no raw: without a resynchronisation point the "header" may be message bytes (§2) */
            emit_error(d, TW_ERR_TRUNCATED, d->apdu_off, NULL, 0);
        d->in_apdu = 0;
        wipe(d);
    } else if (d->pending_dle) {
        d->pending_dle = 0;
        unexpected(d, d->pending_off, DLE);
    } else if (d->state != S_GROUND) {
        emit_error(d, TW_ERR_TRUNCATED, d->frame_off, dle_stx, 2);
        d->state = S_GROUND;
        wipe(d);
    }
    return tw_stream_end(&d->io, 0);
}
